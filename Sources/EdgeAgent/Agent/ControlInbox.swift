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
/// (a newer poll supersedes them); edges and commands are never dropped.
final class ControlInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [ControlInput] = []
    private(set) var droppedReadings = 0
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    func post(_ input: ControlInput) {
        lock.withLock {
            if items.count >= capacity, let i = items.firstIndex(where: { if case .reading = $0 { true } else { false } }) {
                items.remove(at: i)
                droppedReadings += 1
            }
            items.append(input)
        }
    }

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
