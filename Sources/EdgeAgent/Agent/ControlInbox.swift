import Drivers
import FoundationEssentials
import EdgeRuntime

/// Something for the control loop thread: a device poll, a GPIO edge, a command, a failed write.
enum ControlInput: Sendable {
    case reading(DeviceReading)
    case edge(GPIOEdge)
    case command(PendingCommand)
    case writeFailed(device: Int, error: FieldDeviceError)
    case writeDone(device: Int)
    case snapshot(reply: @Sendable (ControlValue) -> Void)
}

/// A bounded multi-producer queue into the control loop thread. Producers (bus threads, the
/// GPIO event thread, the control socket, the uplink) never block on the loop; the loop swaps
/// the whole batch out under the lock. Past `capacity` the oldest device readings are dropped
/// (a newer poll supersedes them); edges and commands are never dropped. An input posted with
/// `wake: true` also runs the waker (`setWaker`: the loop's `wake()`), after the lock is released.
final class ControlInbox: @unchecked Sendable {
    private let lock = Lock()
    private var items: [ControlInput] = []
    private var waker: (@Sendable () -> Void)?
    private(set) var droppedReadings = 0
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    /// What `post(_:wake: true)` calls: the loop's `wake()`.
    func setWaker(_ waker: @escaping @Sendable () -> Void) {
        lock.withLock { self.waker = waker }
    }

    func post(_ input: ControlInput, wake: Bool = false) {
        let waker = lock.withLock { () -> (@Sendable () -> Void)? in
            if items.count >= capacity, let i = items.firstIndex(where: { if case .reading = $0 { true } else { false } }) {
                items.remove(at: i)
                droppedReadings += 1
            }
            items.append(input)
            return wake ? self.waker : nil
        }
        waker?()
    }

    /// Whether nothing is queued (tests).
    var isEmpty: Bool { lock.withLock { items.isEmpty } }

    /// Drops queued readings, edges and write results (the field that sent them is gone: a
    /// reload renumbers devices); commands and status requests stay for the next control step.
    func discardFieldInputs() {
        lock.withLock {
            items.removeAll { input in
                switch input {
                case .command, .snapshot: false
                case .reading, .edge, .writeFailed, .writeDone: true
                }
            }
        }
    }

    /// Moves every queued input into `buffer` (which the loop reuses, so no allocation per tick).
    func drain(into buffer: inout [ControlInput]) {
        lock.withLock {
            if items.isEmpty { return }
            swap(&items, &buffer)
        }
    }
}

/// A command for the agent, from the centre (verified) or a technician (control socket),
/// its action parsed and typed (`CommandAction.parse`); `args` are the wire arguments, kept
/// for the audit log.
struct AgentCommand: Sendable {
    var origin: AuditOrigin
    var id: String
    var target: String
    var action: CommandAction
    var args: [String: ControlValue]
}

/// A command on its way to the control loop, which runs it at most once and only if its
/// waiter has not withdrawn it: a command either runs (its reply is the outcome) or is
/// reported as not run (`timeout`), never both.
///
/// States: queued -> running -> done (the loop claims it, runs it, answers), or queued ->
/// withdrawn (the waiter gave up before the loop claimed it; the loop then skips it). Once
/// claimed, a waiter waits for the real outcome. `reply`, if given, is called once with
/// the outcome (never for a withdrawn command: its waiter answers).
final class PendingCommand: Sendable {
    enum State: Sendable, Equatable { case queued, running, withdrawn, done(ControlResponse) }

    let command: AgentCommand
    private let state = Locked(State.queued)
    /// Wakes a waiter when the outcome is in (the state itself lives in `state`).
    private let signal = Lock()
    private let reply: (@Sendable (ControlResponse) -> Void)?

    init(_ command: AgentCommand, reply: (@Sendable (ControlResponse) -> Void)? = nil) {
        self.command = command
        self.reply = reply
    }

    /// The loop: takes the command to run it; false when its waiter withdrew it (skip it).
    func claim() -> Bool {
        state.withLock { s in
            guard s == .queued else { return false }
            s = .running
            return true
        }
    }

    /// The loop: the outcome of a claimed command.
    func finish(_ response: ControlResponse) {
        state.withLock { $0 = .done(response) }
        signal.lock()
        signal.broadcast()
        signal.unlock()
        reply?(response)
    }

    /// Claims, runs `body` and finishes, on the caller's thread (commands the gateway answers
    /// itself: `ping`, `reload_config`).
    func run(_ body: () -> ControlResponse) {
        guard claim() else { return }
        finish(body())
    }

    /// The waiter: the outcome once it is in, or after `timeout` the command withdrawn and
    /// `timeout` ("not run") answered. A command the loop claimed in time is waited for to
    /// the end, however long it runs.
    func wait(timeout: Duration) -> ControlResponse {
        let deadline = MonotonicInstant.now() + timeout
        signal.lock()
        defer { signal.unlock() }
        while true {
            let s = state.withLock { s in
                if s == .queued, MonotonicInstant.now() >= deadline { s = .withdrawn }
                return s
            }
            switch s {
            case .done(let response): return response
            case .withdrawn:
                return .failure(.timeout, "the control loop did not take the command within \(timeout); it was not run")
            case .queued: signal.wait(until: deadline)
            case .running: signal.wait()
            }
        }
    }
}
