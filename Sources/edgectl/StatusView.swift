import EdgeAgent
import FoundationEssentials

/// Renders the agent's status for a technician in the cabinet: one screen, most important first.
enum StatusView {
    static func render(_ status: ControlValue) -> String {
        guard let s = status.object else { return "no status\n" }
        var out = ""
        func line(_ text: String = "") { out += text + "\n" }
        func pad(_ text: String, _ n: Int) -> String { text.count >= n ? text + " " : text + String(repeating: " ", count: n - text.count) }

        let gateway = s["gateway"]?.string ?? "?"
        let version = s["version"]?.string ?? "?"
        let uptime = Int(s["uptime_s"]?.number ?? 0)
        line("gateway \(gateway)   edge-agent \(version)   up \(uptime / 3600)h\((uptime % 3600) / 60)m\(uptime % 60)s" + ((s["maintenance"]?.bool ?? false) ? "   MAINTENANCE MODE" : ""))
        if let u = s["uplink"]?.object {
            let connected = u["connected"]?.bool ?? false
            var text = "uplink  \(connected ? "connected" : "NOT CONNECTED") to \(u["broker"]?.string ?? "?")"
            text += "   outbox \(Int(u["outbox_depth"]?.number ?? 0)) queued"
            let dropped = Int(u["dropped_telemetry"]?.number ?? 0) + Int(u["dropped_events"]?.number ?? 0)
            if dropped > 0 { text += ", \(dropped) dropped" }
            if let e = u["outbox_error"]?.string { text += "   OUTBOX ERROR: \(e)" }
            line(text)
        }
        if let l = s["loop"]?.object {
            let period = l["period_ms"]?.number ?? 0
            let pace = period > 0 ? "period \(Int(period)) ms" : "wake-ups \(l["wakeups_per_s"]?.number ?? 0)/s"
            line("loop    \(pace)   worst late \(Int(l["worst_late_us"]?.number ?? 0)) us   p99 \(Int(l["p99_late_us"]?.number ?? 0)) us   \((l["realtime"]?.bool ?? false) ? "SCHED_FIFO" : "normal scheduling")")
        }
        line()
        let alarms = s["alarms"]?.array ?? []
        if alarms.isEmpty { line("alarms  none") } else {
            line("ALARMS  \(alarms.count)")
            for a in alarms {
                guard let o = a.object else { continue }
                line("  \(pad((o["severity"]?.string ?? "").uppercased(), 9))\(pad(o["device"]?.string ?? "", 14))\(pad(o["code"]?.string ?? "", 20))\(o["message"]?.string ?? "")")
            }
        }
        line()
        if let g = s["lighting"]?.object, !g.isEmpty {
            line("LIGHTING        level  schedule  state")
            for name in g.keys.sorted() {
                guard let o = g[name]?.object else { continue }
                var state = (o["boosting"]?.bool ?? false) ? "boost" : "base"
                if let ov = o["override"]?.number { state = "override \(Int(ov)) %" }
                line("  \(pad(name, 14))\(pad("\(Int(o["level"]?.number ?? 0)) %", 7))\(pad("\(Int(o["schedule"]?.number ?? 0)) %", 10))\(state)")
            }
            line()
        }
        if let b = s["bollards"]?.object, !b.isEmpty {
            line("BOLLARDS        position        loop  photocell  traffic  motor")
            for name in b.keys.sorted() {
                guard let o = b[name]?.object else { continue }
                let motor = (o["motor_up"]?.bool ?? false) ? "UP" : (o["motor_down"]?.bool ?? false) ? "DOWN" : "off"
                var text = "  \(pad(name, 14))\(pad(o["position"]?.string ?? "?", 16))\(pad((o["loop"]?.bool ?? false) ? "occ" : "clear", 6))\(pad((o["photocell"]?.bool ?? false) ? "broken" : "clear", 11))\(pad(o["traffic"]?.string ?? "?", 9))\(motor)"
                if let f = o["fault"]?.string { text += "   fault: \(f)" }
                if o["emergency_latched"]?.bool == true { text += "   emergency latched (clear to end)" }
                if let h = o["hold_s"]?.number { text += "   held down \(Int(h.rounded(.up))) s" }
                line(text)
            }
            line()
        }
        if let a = s["approaches"]?.object, !a.isEmpty {
            line("PRIORITY        request  buses")
            for name in a.keys.sorted() {
                guard let o = a[name]?.object else { continue }
                line("  \(pad(name, 14))\(pad((o["request"]?.bool ?? false) ? "ON" : "off", 9))\(Int(o["vehicles"]?.number ?? 0))")
            }
            line()
        }
        if let d = s["devices"]?.object {
            line("DEVICES         state    where              values")
            for name in d.keys.sorted() {
                guard let o = d[name]?.object else { continue }
                let state: String
                switch o["online"] {
                case .bool(true)?: state = "online"
                case .bool(false)?: state = "OFFLINE"
                default: state = "-"
                }
                let place: String
                if let bus = o["bus"]?.string { place = "\(bus) unit \(Int(o["unit"]?.number ?? 0))" } else { place = "gpio \(o["line"]?.string ?? "?")" }
                var values = ""
                if let v = o["values"]?.object {
                    let keys = ["level", "setpoint", "power_w", "presence", "lux", "loop", "at_top", "at_bottom"].filter { v[$0] != nil }
                    values = keys.map { "\($0)=\(v[$0]!)" }.joined(separator: " ")
                } else if let v = o["value"]?.bool { values = v ? "active" : "inactive" }
                line("  \(pad(name, 14))\(pad(state, 9))\(pad(place, 19))\(values)")
            }
        }
        return out
    }
}
