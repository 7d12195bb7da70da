#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// Issue 12, "a scheduler per bus", through real processes: a dead bollard unit on a shared bus
/// with a second bollard, 20 lamps and the junction's signal I/O, default timeouts (500 ms).
/// From edge-sim's request log (its own clock): the others keep their poll periods, the dead
/// unit gets no more than its share of the bus, and the second bollard's motor-up is off within
/// max_sensor_age (300 ms, the agent's default) + one poll period after its loop is occupied.
/// Once over Modbus TCP, once on an RS-485 line paced at 19200 baud 8E1 (`rtuline`).
@Suite(.serialized)
struct BusScheduleTests {
    /// One line of `edge-sim --request-log`.
    struct LogLine {
        var t: Int64
        var words: [Substring]
    }

    static func readLog(_ path: String) -> [LogLine] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let w = line.split(separator: " ")
            guard w.count >= 2, let t = Int64(w[0]) else { return nil }
            return LogLine(t: t, words: Array(w.dropFirst()))
        }
    }

    /// Times of the polls of `unit` (one discrete-input or input-register read per poll, function 2 or 4).
    static func polls(_ log: [LogLine], unit: Int, function: Int) -> [Int64] {
        log.filter { $0.words.count >= 5 && $0.words[0] == "req" && $0.words[1] == "\(unit)" && $0.words[2] == "\(function)" }.map(\.t)
    }

    static func gaps(_ times: [Int64]) -> [Double] {
        zip(times.dropFirst(), times).map { Double($0 - $1) / 1e6 }
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        return s[min(s.count - 1, Int((Double(s.count) * p).rounded(.up)) - 1)]
    }

    static func report(_ figures: String) {
        FileHandle.standardError.write(Data("bus-schedule: \(figures)\n".utf8))
    }

    static func simConfig() -> String {
        var units = """
        tick: 10ms
        units:
          30: {type: ref-bollard, name: bollard-1, travel_up: 1s, travel_down: 800ms}
          31: {type: ref-bollard, name: bollard-2, travel_up: 1500ms, travel_down: 800ms}
          40: {type: ref-signal-io, name: junction, ack_delay: 100ms}

        """
        for i in 1...20 { units += "  \(i): {type: ref-luminaire, name: \(String(format: "lamp-%02d", i)), rated_w: 60}\n" }
        return units
    }

    static func agentConfig(scratch: ScratchDir, sim: SimProcess, bus: String, polls: (bollard: String, junction: String)) -> String {
        _ = scratch.write("board.yaml", """
        name: test-sim
        description: simulated board, no GPIO lines used
        gpio:
          backend: simulated
          simulator_socket: \(sim.controlPath)
          lines: {}
        """)
        let lamps = (1...20).map { String(format: "lamp-%02d", $0) }
        var devices = """
          bollard-1: {profile: ref-bollard, bus: field, unit: 30\(polls.bollard)}
          bollard-2: {profile: ref-bollard, bus: field, unit: 31\(polls.bollard)}
          junction: {profile: ref-signal-io, bus: field, unit: 40\(polls.junction)}

        """
        for (i, lamp) in lamps.enumerated() { devices += "  \(lamp): {profile: ref-luminaire, bus: field, unit: \(i + 1)}\n" }
        return """
        gateway:
          id: test-gw
          location: {lat: 47.3220, lon: 5.0415}
          timezone: Europe/Paris
          state_dir: \(scratch.file("state"))
          control_socket: \(scratch.file("control.sock"))
        uplink:
          broker: mqtt://127.0.0.1:\(Loopback.freePort())
          telemetry_interval: 10s
        board: board.yaml
        profiles_dir: \(BuildProducts.packageRoot.appendingPathComponent("Profiles").path)
        control: {period: 10ms, realtime_priority: 0}
        buses:
          field: \(bus)
        devices:
        \(devices)
        lighting:
          street:
            lamps: [\(lamps.joined(separator: ", "))]
            base: 30
            boost: 100
            hold: 1s
            fade_up: 300ms
            fade_down: 500ms
        bollards:
          bollard-1: {pre_warning: 300ms, travel_timeout: 4s}
          bollard-2: {pre_warning: 300ms, travel_timeout: 4s}
        priority:
          north: {device: junction, approach: 1, max_hold: 4s, min_interval: 500ms}
        """
    }

    /// The scenario on one bus; `period` is the bollards' poll period on it.
    func deadUnitScenario(name: String, sim: SimProcess, log: String, bus: String, polls: (bollard: String, junction: String),
                          period: Double, junctionPeriod: Double) throws {
        let scratch = ScratchDir("bus-schedule")
        try sim.set("bollard-1", "offline", 1)   // its I/O module has no power from the start
        let configPath = scratch.write("agent.yaml", Self.agentConfig(scratch: scratch, sim: sim, bus: bus, polls: polls))
        let check = try runCommand(BuildProducts.executable("edgectl"), ["config", "check", configPath], timeout: .seconds(20))
        #expect(check.status == 0, "config check: \(check.stdout) \(check.stderr)")
        let agent = try ChildProcess(BuildProducts.executable("edge-agent"), ["--config", configPath])
        defer { agent.kill9() }
        func ctl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runCommand(BuildProducts.executable("edgectl"), ["--socket", scratch.file("control.sock")] + args, timeout: .seconds(20))
        }
        func online(_ device: String) -> Bool? {
            guard let r = try? ctl(["status", "--json"]), r.status == 0,
                  let s = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] else { return nil }
            return ((s["devices"] as? [String: Any])?[device] as? [String: Any])?["online"] as? Bool
        }
        #expect(Wait.until(timeout: .seconds(20)) { online("bollard-2") == true && online("junction") == true && online("lamp-20") == true },
                "agent: \(agent.stderr.suffix(2000))")
        #expect(Wait.until(timeout: .seconds(5)) { online("bollard-1") == false })

        // Steady state with the dead unit: 4 s of the request log.
        Thread.sleep(forTimeInterval: 1)
        let from = Self.readLog(log).last?.t ?? 0
        Thread.sleep(forTimeInterval: 4)
        let window = Self.readLog(log).filter { $0.t >= from }
        let span = Double((window.last?.t ?? from) - from) / 1e9
        let bollardGaps = Self.gaps(Self.polls(window, unit: 31, function: 2))
        let junctionGaps = Self.gaps(Self.polls(window, unit: 40, function: 2))
        let lampPolls = (1...20).map { Self.polls(window, unit: $0, function: 4).count }
        let dead = window.filter { $0.words.count >= 2 && $0.words[0] == "req" && $0.words[1] == "30" }.count
        let bMedian = Self.percentile(bollardGaps, 0.5), bP99 = Self.percentile(bollardGaps, 0.99), bMax = bollardGaps.max() ?? .nan
        let jMedian = Self.percentile(junctionGaps, 0.5), jP99 = Self.percentile(junctionGaps, 0.99)
        // The periods hold: median at the period, p99 within 2 periods (the scheduler's own bound is
        // 1.5; the rest is this shared 2-core machine's scheduling).
        #expect(abs(bMedian - period) <= period * 0.2, "bollard-2 poll gap median \(bMedian) ms")
        #expect(bP99 <= 2 * period, "bollard-2 poll gap p99 \(bP99) ms")
        #expect(abs(jMedian - junctionPeriod) <= junctionPeriod * 0.2, "junction poll gap median \(jMedian) ms")
        #expect(jP99 <= 2 * junctionPeriod, "junction poll gap p99 \(jP99) ms")
        #expect(lampPolls.allSatisfy { Double($0) >= span / 2 - 1 }, "lamp polls in \(span) s: \(lampPolls)")
        // The dead unit: one request per probe, at backoff steps, within a fifth of the bus time.
        #expect(Double(dead) * 0.025 <= span * 0.2 + 0.025, "requests to the dead unit: \(dead) in \(span) s")

        // The second bollard rises; a vehicle enters its loop: motor-up off within 300 ms + one period.
        #expect(try ctl(["bollard", "raise", "bollard-2"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(5)) { (try? sim.get("bollard-2")["motor_up"] as? Bool) == true })
        try sim.set("bollard-2", "loop", 1)
        var stopMs = Double.nan
        #expect(Wait.until(timeout: .seconds(3)) {
            let all = Self.readLog(log)
            guard let set = all.last(where: { $0.words.starts(with: ["set", "bollard-2", "loop", "1"]) }),
                  let off = all.first(where: { $0.t >= set.t && $0.words.count >= 6 && $0.words[0] == "wrote" && $0.words[1] == "31" && $0.words[5].hasPrefix("coils=0") })
            else { return false }
            stopMs = Double(off.t - set.t) / 1e6
            return true
        })
        #expect(stopMs <= 300 + period, "motor-up off \(stopMs) ms after the loop was occupied")
        let stats = try sim.stats()
        #expect(stats.safetyViolations == 0, "\(stats.violations)")
        if stats.safetyViolations != 0 { try? FileManager.default.copyItem(atPath: log, toPath: "/tmp/bus-violation-\(name).log") }
        Self.report("\(name): span \(String(format: "%.1f", span)) s; bollard-2 poll gap ms median/p99/max \(bMedian)/\(bP99)/\(bMax) (period \(period)); "
                    + "junction median/p99 \(jMedian)/\(jP99) (period \(junctionPeriod)); lamp polls \(lampPolls.min() ?? 0)-\(lampPolls.max() ?? 0); "
                    + "requests to the dead unit \(dead); motor-up off \(stopMs) ms after loop occupied")
    }

    @Test func aDeadBollardOnATCPBusLeavesTheOthersTheirPeriods() throws {
        let scratch = ScratchDir("bus-schedule-log")
        let log = scratch.file("requests.log")
        let sim = try SimProcess(config: Self.simConfig(), requestLog: log)
        defer { sim.stop() }
        try deadUnitScenario(name: "tcp", sim: sim, log: log, bus: "{tcp: \"127.0.0.1:\(sim.port)\"}", polls: ("", ""), period: 50, junctionPeriod: 50)
    }

    @Test func aDeadBollardOnA19200BaudLineLeavesTheOthersTheirPeriods() throws {
        let scratch = ScratchDir("bus-schedule-log")
        let log = scratch.file("requests.log")
        let line = try RTULine(baud: 19200)
        defer { line.stop() }
        let sim = try SimProcess(config: Self.simConfig(), rtu: line.slavePath, requestLog: log)
        defer { sim.stop() }
        // Two bollards and the junction at 50 ms do not fit 19200 baud (config check refuses it):
        // bollards every 100 ms, the junction every 200 ms.
        try deadUnitScenario(name: "rtu-19200", sim: sim, log: log, bus: "{rtu: \(line.masterPath), baud: 19200, parity: E}",
                             polls: (", poll: 100ms", ", poll: 200ms"), period: 100, junctionPeriod: 200)
    }
}
