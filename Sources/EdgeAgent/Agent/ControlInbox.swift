import Drivers
import Foundation

/// Something for the control loop thread: a device poll, a GPIO edge, a command, a failed write.
enum ControlInput: Sendable {
    case reading(DeviceReading)
    case edge(GPIOEdge)
    case command(AgentCommand, reply: @Sendable (ControlResponse) -> Void)
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
    private let lock = NSLock()
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

    /// Moves every queued input into `buffer` (which the loop reuses, so no allocation per tick).
    func drain(into buffer: inout [ControlInput]) {
        lock.withLock {
            if items.isEmpty { return }
            swap(&items, &buffer)
        }
    }
}

/// A command for the agent, from the centre (verified) or a technician (control socket).
struct AgentCommand: Sendable {
    var origin: AuditOrigin
    var id: String
    var target: String
    /// Contract action names: set_level, release, raise, lower, emergency_lower, clear_emergency,
    /// hold_down, priority_request, priority_cancel, ping, reload_config, io_write.
    var action: String
    var args: [String: ControlValue]
}
