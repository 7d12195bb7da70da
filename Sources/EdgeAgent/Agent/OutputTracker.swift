import Drivers

/// What the agent last wrote (or queued) to each device's outputs and which writes are in
/// flight, so the step writes only what changed; a device that reports other values than
/// were written (it rebooted, someone changed it by hand) is written again.
///
/// Invariants: a device with a write in flight is never written again before the write
/// completes (`done` or `failed`); after `failed` or `forget` nothing is known of it, so the
/// next step writes every output again.
struct OutputTracker {
    private var written: [PointValues?]
    private var pending: [Bool]

    init(count: Int) {
        written = Array(repeating: nil, count: count)
        pending = Array(repeating: false, count: count)
    }

    /// The value last written to `role` of `id`, if known.
    func written(_ id: Int, _ role: PointRole) -> Double? { written[id]?[role] }

    /// Whether one output differs from what is known to be written (and no write is in flight);
    /// allocates nothing (the step asks this for every output at every step).
    func needsWrite(_ id: Int, _ role: PointRole, _ value: Double) -> Bool {
        if pending[id] { return false }
        return written[id]?[role] != value
    }

    /// `outputs` were queued for `id`.
    mutating func queued(_ id: Int, _ outputs: [(PointRole, Double)]) {
        var w = written[id] ?? PointValues()
        for (role, value) in outputs { w[role] = value }
        written[id] = w
        pending[id] = true
    }

    mutating func done(_ id: Int) { pending[id] = false }

    mutating func failed(_ id: Int) {
        pending[id] = false
        written[id] = nil
    }

    /// Nothing is known of the device's outputs any more (it went offline, rebooted).
    mutating func forget(_ id: Int) { written[id] = nil }

    /// The device reports `reported`: an output of `roles` that differs from what was written
    /// (and no write in flight) means the device lost it; write again.
    mutating func compare(_ id: Int, reported: PointValues, roles: [PointRole]) {
        guard !pending[id], let w = written[id] else { return }
        for role in roles {
            if let mine = w[role], let theirs = reported[role], mine != theirs {
                written[id] = nil
                return
            }
        }
    }
}

/// The outputs of one write, ordered off before on: every point going to its safe value
/// first, whatever the register order, so a write that fails half-way leaves only safe values
/// on; then points with no safe direction (warning lights, a setpoint); then the points leaving
/// their safe value, motor coils last (the warning lights and buzzer are on before a motor
/// starts, and nothing of the same write lands after the motor is energised). Points the
/// device's profile lacks (an optional buzzer, fade or traffic light) are left out.
func orderedOutputs(_ outputs: [(PointRole, Double)], has: (PointRole) -> Bool) -> [(PointRole, Double)] {
    let present = outputs.filter { has($0.0) }
    let safe = present.filter { $0.0.safeValue == $0.1 }
    let neutral = present.filter { $0.0.safeValue == nil }
    let leaving = present.filter { $0.0.safeValue != nil && $0.0.safeValue != $0.1 }
    return safe + neutral + leaving.filter { $0.0 != .motorUp && $0.0 != .motorDown } + leaving.filter { $0.0 == .motorUp || $0.0 == .motorDown }
}

/// The bus's form of ordered outputs: point names, safe-direction points marked.
func pointWrites(_ outputs: [(PointRole, Double)]) -> [PointWrite] {
    outputs.map { PointWrite($0.0.pointName, $0.1, safe: $0.0.safeValue == $0.1) }
}
