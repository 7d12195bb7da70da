import Drivers
import EdgeRuntime

/// Which device polls wake the control loop at once; the others wait in the inbox for its next
/// run (a deadline, another input, at most `ControlCore.maxSleep`).
///
/// Rules:
/// - Only devices a safety or latency rule depends on (`FieldMap.waking`: bollards, presence
///   sensors, signal I/O) ever wake it; a luminaire's poll never does.
/// - Such a poll wakes the loop when it differs from the device's previous poll: online or not,
///   a value (role by role), or the values that could not be used. A poll that repeats the one
///   before carries only its age, and the loop's own deadlines (sensor age of a moving bollard,
///   signal I/O age) already run it in time to see that. A role the poll did not read
///   (`DeviceReading.unread`: a slow block between its reads) is no change; its last known
///   value stands for the next comparison.
/// - Every poll of a device the loop marked eager wakes it: a bollard that is not at rest (it
///   waits for a fresh poll to start moving, moves, or is in a fault a fresh poll clears) and a
///   signal I/O judged stale or offline.
///
/// Called from bus threads (`wakes`) and the loop thread (`setEager`, on a change only).
final class ReadingWakeFilter: Sendable {
    private struct Last {
        var online: Bool
        var values: PointValues
        var invalid: [String]
    }
    private struct State {
        var last: [Last?]
        var eager: [Bool]
    }

    /// Devices whose polls may wake the loop, by id.
    let waking: [Bool]
    private let state: Locked<State>

    init(waking: [Bool]) {
        self.waking = waking
        state = Locked(State(last: Array(repeating: nil, count: waking.count), eager: Array(repeating: false, count: waking.count)))
    }

    /// Whether this poll wakes the loop (records it as the device's previous poll).
    func wakes(_ r: DeviceReading) -> Bool {
        let id = r.device
        guard id >= 0, id < waking.count, waking[id] else { return false }
        return state.withLock { s in
            let changed: Bool
            if let l = s.last[id] {
                changed = l.online != r.online || !l.values.sameValues(as: r.values, except: r.unread) || l.invalid != r.invalid
            } else {
                changed = true
            }
            if changed {
                if r.unread.isEmpty || s.last[id] == nil {
                    s.last[id] = Last(online: r.online, values: r.values, invalid: r.invalid)
                } else {
                    s.last[id]!.online = r.online
                    s.last[id]!.values.update(from: r.values, keeping: r.unread)
                    s.last[id]!.invalid = r.invalid
                }
            }
            return changed || s.eager[id]
        }
    }

    /// Every poll of `id` wakes the loop (`on`), or only a changed one.
    func setEager(_ id: Int, _ on: Bool) {
        state.withLock { $0.eager[id] = on }
    }

    func isEager(_ id: Int) -> Bool { state.withLock { $0.eager[id] } }
}
