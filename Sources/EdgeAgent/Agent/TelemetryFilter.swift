import EdgeRuntime

/// Which telemetry goes to the centre: each device's values at the telemetry interval, or
/// sooner (at most once a second) when one changed beyond its deadband: 2 % of the last sent
/// value or 1 unit, whichever is larger; a text value on any change; `energy_wh` (a counter)
/// only at the interval.
struct TelemetryFilter {
    let interval: Duration
    private var last: [(at: MonotonicInstant, values: [String: ControlValue])?]

    init(count: Int, interval: Duration) {
        self.interval = interval
        last = Array(repeating: nil, count: count)
    }

    /// Whether `values` of device `id` go out now; if so they become the last sent.
    mutating func offer(_ id: Int, _ values: [String: ControlValue], now: MonotonicInstant) -> Bool {
        if values.isEmpty { return false }
        if let l = last[id] {
            let age = now - l.at
            guard age >= interval || (age >= .seconds(1) && Self.significant(values, l.values)) else { return false }
        }
        last[id] = (now, values)
        return true
    }

    static func significant(_ a: [String: ControlValue], _ b: [String: ControlValue]) -> Bool {
        if a.count != b.count { return true }
        for (k, x) in a {
            guard let y = b[k] else { return true }
            if let p = x.number, let q = y.number {
                if k == "energy_wh" { continue }
                if abs(p - q) > max(1.0, 0.02 * abs(q)) { return true }
            } else if x != y { return true }
        }
        return false
    }
}
