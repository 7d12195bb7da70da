// Fuzz target: agent.yaml (ConfigLoader.load(text:path:), with the board and profiles it names)
// and the small value syntaxes (ConfigSyntax) on short inputs.
//
// Invariants: loading never traps; an error names the file and a line inside the text; an
// accepted config has every cross-reference and range the loader promises, and its lighting
// schedules can be evaluated (levels 0-100, next change strictly later, within two days).
import Drivers
import EdgeAgent
import Foundation
import FuzzSupport

@_cdecl("FuzzConfig_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.main(argc, argv, seeds: ConfigSeeds.all) { data, size in fuzz(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.withInput(data, size) { bytes in
        guard let text = FuzzInput.utf8(bytes) else { return -1 }
        if bytes.count <= 48 { SyntaxChecks.run(text) }
        let fixture = FuzzFixture.shared
        do throws(ConfigError) {
            let config = try ConfigLoader.load(text: text, path: fixture.configPath)
            FuzzDriver.explain("config accepted: \(config.devices.count) devices, \(config.lighting.count) groups")
            ConfigChecks.accepted(config)
        } catch {
            FuzzDriver.explain("config refused: \(error)")
            Check.configError(error, text: text, textFile: fixture.configPath)
        }
        return 0
    }
}

enum SyntaxChecks {
    static func run(_ text: String) {
        if let d = ConfigSyntax.duration(text) {
            require(d >= .zero, "negative duration \(d) from \(text.debugDescription)")
            let formatted = ConfigSyntax.format(d)
            require(ConfigSyntax.duration(formatted) == d, "duration \(text.debugDescription) = \(d) formats as \(formatted.debugDescription), which does not parse back to it")
        }
        if let t = ConfigSyntax.timeOfDay(text) {
            require((0...23).contains(t.hour) && (0...59).contains(t.minute), "time \(text.debugDescription) = \(t)")
        }
        if let b = ConfigSyntax.dayBoundary(text) {
            switch b {
            case .dusk(let m), .dawn(let m): require(abs(m) <= 360, "offset \(m) min from \(text.debugDescription)")
            case .time(let h, let m): require((0...23).contains(h) && (0...59).contains(m), "time \(h):\(m) from \(text.debugDescription)")
            }
        }
        if ConfigSyntax.isID(text) {
            require(!text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D },
                    "isID accepted \(text.debugDescription)")
        }
    }
}

enum ConfigChecks {
    /// Fixed instants the accepted schedules are evaluated at: a summer noon, a winter midnight,
    /// and the spring-forward night of Europe/Paris (01:30 UTC, 2026-03-29).
    static let instants: [Date] = [1_782_043_200, 1_797_724_800, 1_774_747_800].map { Date(timeIntervalSince1970: $0) }

    static func accepted(_ c: AgentConfig) {
        require(ConfigSyntax.isID(c.gateway.id), "gateway id \(c.gateway.id.debugDescription)")
        require((-90...90).contains(c.gateway.latitude) && (-180...180).contains(c.gateway.longitude), "location \(c.gateway.latitude),\(c.gateway.longitude)")
        require(c.gateway.controlSocket.utf8.count <= 107, "control socket path of \(c.gateway.controlSocket.utf8.count) bytes")
        require(c.uplink.broker.hasPrefix("mqtt://") || c.uplink.broker.hasPrefix("mqtts://"), "broker \(c.uplink.broker)")
        require(!c.uplink.broker.hasPrefix("mqtts://") || c.uplink.tls != nil, "mqtts without tls")
        require(c.uplink.centreKeys.values.allSatisfy { $0.count == 32 }, "a centre key is not 32 bytes")
        require(c.uplink.telemetryInterval > .zero && c.uplink.outboxMaxAge > .zero && c.uplink.outboxMaxMessages >= 1, "uplink limits")
        require(c.control.period > .zero && c.control.period <= .seconds(1) && (0...99).contains(c.control.realtimePriority), "control \(c.control)")
        for (name, bus) in c.buses {
            require(name == bus.name && ConfigSyntax.isID(name), "bus \(name)")
            require(bus.timeout > .zero && (bus.pollInterval.map { $0 > .zero } ?? true), "bus \(name) timing")
            if case .tcp(let host, let port) = bus.transport { require(!host.isEmpty && (1...65535).contains(port), "bus \(name) \(host):\(port)") }
        }
        func kind(_ device: String) -> DeviceProfile.Kind? {
            guard case .modbus(let profile, _, _)? = c.devices[device]?.attachment else { return nil }
            return c.profiles[profile]?.kind
        }
        func gpioInput(_ device: String) -> Bool {
            guard case .gpio(let line)? = c.devices[device]?.attachment else { return false }
            return c.board.lines[line]?.direction == .input
        }
        var units: Set<String> = []
        for (name, device) in c.devices {
            require(name == device.name && ConfigSyntax.isID(name), "device \(name)")
            switch device.attachment {
            case .modbus(let profile, let bus, let unit):
                require(c.profiles[profile] != nil, "device \(name): profile \(profile) not loaded")
                require(c.buses[bus] != nil, "device \(name): bus \(bus) not defined")
                require((1...247).contains(unit), "device \(name): unit \(unit)")
                require(units.insert("\(bus)/\(unit)").inserted, "unit \(unit) on bus \(bus) used twice")
            case .gpio(let line):
                require(c.board.lines[line] != nil, "device \(name): line \(line) not on the board")
            case .gpioPoints(_, let lines):
                for line in lines.values { require(c.board.lines[line] != nil, "device \(name): line \(line) not on the board") }
            }
        }
        var owner: [String: String] = [:]
        let timeZone = try? ZoneRules.load(c.gateway.timezone)
        require(timeZone != nil, "time zone \(c.gateway.timezone) accepted but unknown")
        for (name, g) in c.lighting {
            require(!g.lamps.isEmpty, "group \(name) without lamps")
            for lamp in g.lamps {
                require(kind(lamp) == .luminaire, "group \(name): \(lamp) is not a luminaire")
                require(owner.updateValue(name, forKey: lamp) == nil, "lamp \(lamp) in two groups")
            }
            for p in g.presence { require(kind(p) == .presence || gpioInput(p), "group \(name): presence \(p)") }
            require((0...100).contains(g.base) && (0...100).contains(g.boost) && g.base <= g.boost, "group \(name) levels \(g.base)/\(g.boost)")
            if let n = g.night { require((0...g.base).contains(n.base), "group \(name) night base \(n.base)") }
            require((g.on == nil) == (g.off == nil), "group \(name): on without off")
            for n in g.neighbours { require(c.lighting[n] != nil && n != name, "group \(name): neighbour \(n)") }
            require(g.powerTolerance > 0 && g.powerTolerance <= 1, "group \(name) tolerance \(g.powerTolerance)")
            if let timeZone { schedule(g, c, timeZone) }
        }
        for (name, b) in c.bollards {
            require(kind(name) == .bollard, "bollard \(name) is not a bollard device")
            require(b.preWarning > .zero && b.travelTimeout > .zero && (1...20).contains(b.maxReversals), "bollard \(name) settings")
        }
        var approaches: Set<String> = []
        for (name, a) in c.priority {
            require(kind(a.device) == .signalIO, "approach \(name): \(a.device) is not signal-io")
            require((1...8).contains(a.approach), "approach \(name): number \(a.approach)")
            require(approaches.insert("\(a.device)/\(a.approach)").inserted, "approach \(a.approach) of \(a.device) used twice")
            for d in [a.checkin, a.checkout].compactMap({ $0 }) { require(gpioInput(d), "approach \(name): detector \(d)") }
            require(a.checkin == nil || a.checkin != a.checkout, "approach \(name): same detector twice")
            require(a.maxHold > .zero, "approach \(name): max_hold")
        }
    }

    /// What the control loop will do with an accepted group: evaluate its schedule.
    static func schedule(_ g: LightingGroupConfig, _ c: AgentConfig, _ timeZone: ZoneRules) {
        let s = LightingSchedule(config: g, latitude: c.gateway.latitude, longitude: c.gateway.longitude, timeZone: timeZone)
        for t in instants {
            let level = s.level(at: t)
            require(level == 0 || level == g.base || level == g.night?.base, "group \(g.name): schedule level \(level) at \(t)")
            let next = s.nextChange(after: t)
            require(next > t && next.timeIntervalSince(t) <= 2 * 86_400, "group \(g.name): next change \(next) after \(t)")
        }
    }
}
