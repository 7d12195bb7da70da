#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// Field faults against whole processes: edge-sim (with injected unit faults), a TCP fault proxy,
/// an RTU line tap between socat pty pairs, chattering GPIO lines, and the real edge-agent, with
/// mosquitto and `mosquitto_sub` as the centre where alarms are checked on the wire.
///
/// Every test asserts, through real processes: the faulty device is reported offline with an
/// alarm (status JSON, and the retained alarm topic where a broker runs), the other devices keep
/// working, the control loop keeps its deadline (`loop.worst_late_us` under a generous
/// correctness bound, not a benchmark), the alarm clears once the fault is gone, no uplink seq is
/// lost, and the simulator counts no safety violation. Figures: docs/reliability/field-faults.md.
@Suite(.serialized)
struct FieldFaultTests {
    /// What the bound proves: the loop never waits on a faulty device. A loop that waited on a
    /// bus would be late by at least the rig's bus timeout (200 ms, `FieldRig`); 150 ms keeps that
    /// apart from scheduling delay on a loaded 2-core machine (50 ms failed there under parallel
    /// builds). Lateness figures themselves are benchmarks (Benchmarks/, `loop`).
    static let lateBoundMicros = 150_000.0

    // MARK: - Reading status and the simulator

    static func number(_ d: [String: Any]?, _ k: String) -> Double? {
        guard let d else { return nil }
        return (d[k] as? Double) ?? (d[k] as? Int).map(Double.init)
    }

    static func bool(_ d: [String: Any]?, _ k: String) -> Bool? {
        guard let d else { return nil }
        return (d[k] as? Bool) ?? (d[k] as? Int).map { $0 != 0 }
    }

    static func device(_ status: [String: Any], _ name: String) -> [String: Any]? {
        (status["devices"] as? [String: Any])?[name] as? [String: Any]
    }

    static func alarms(_ status: [String: Any]) -> [(device: String, code: String, severity: String, message: String)] {
        (status["alarms"] as? [[String: Any]] ?? []).map {
            ($0["device"] as? String ?? "", $0["code"] as? String ?? "", $0["severity"] as? String ?? "", $0["message"] as? String ?? "")
        }
    }

    static func hasAlarm(_ status: [String: Any], _ device: String, _ code: String) -> Bool {
        alarms(status).contains { $0.device == device && $0.code == code }
    }

    /// `devices.<name>.online` from edgectl status (nil: unknown or agent unreachable).
    static func online(_ rig: FieldRig, _ name: String) -> Bool? {
        (try? rig.status()).flatMap { device($0, name) }.flatMap { $0["online"] as? Bool }
    }

    static func setpoint(_ rig: FieldRig, _ lamp: String) -> Double? {
        number(try? rig.device(lamp), "setpoint")
    }

    /// One line of figures for docs/reliability/field-faults.md, on stderr (`field-fault: ...`).
    static func report(_ test: String, _ figures: String) {
        FileHandle.standardError.write(Data("field-fault: \(test): \(figures)\n".utf8))
    }

    /// Waits like `Wait.until`; returns how long the condition took, or nil when it never held.
    static func timed(_ timeout: Duration, _ condition: () throws -> Bool) rethrows -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        return try Wait.until(timeout: timeout, condition) ? clock.now - start : nil
    }

    /// Milliseconds of a measured wait, for reports ("-" when it timed out).
    static func ms(_ d: Duration?) -> String {
        guard let d else { return "-" }
        return "\(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)"
    }

    static func worstLate(_ rig: FieldRig) throws -> Double {
        let loop = try rig.status()["loop"] as? [String: Any]
        return number(loop, "worst_late_us") ?? .infinity
    }

    /// The other devices work: presence on pir-01 boosts lamp-01 to 100, its end brings it back to 30.
    static func presenceStillBoosts(_ rig: FieldRig, lamps: [String] = ["lamp-01"]) throws -> Bool {
        _ = try rig.simControl("set pir-01 presence 1")
        let up = Wait.until(timeout: .seconds(5)) { lamps.allSatisfy { setpoint(rig, $0) == 100 } }
        _ = try rig.simControl("set pir-01 presence 0")
        return up
    }

    /// The uplink lost nothing: nothing dropped from the outbox, no write error.
    static func uplinkLostNothing(_ rig: FieldRig) throws -> Bool {
        let uplink = try rig.status()["uplink"] as? [String: Any]
        return number(uplink, "dropped_events") == 0 && number(uplink, "dropped_telemetry") == 0 && number(uplink, "outbox_errors") == 0
    }

    // MARK: - Config edits for the rig

    /// `config` with `line` inserted after the first line that starts with `prefix`.
    static func insert(_ line: String, after prefix: String, in config: String) -> String {
        var lines = config.components(separatedBy: "\n")
        guard let i = lines.firstIndex(where: { $0.hasPrefix(prefix) }) else { return config }
        lines.insert(line, at: i + 1)
        return lines.joined(separator: "\n")
    }

    /// The rig's config with lamp-02 moved to its own bus `flaky` at 127.0.0.1:`port`.
    static func lamp02OnOwnBus(_ rig: FieldRig, port: Int) -> String {
        var c = rig.agentConfig()
        c = insert("  flaky: {tcp: \"127.0.0.1:\(port)\", timeout: 200ms, poll: 50ms}", after: "  field: {tcp:", in: c)
        c = c.replacingOccurrences(of: "lamp-02: {profile: ref-luminaire, bus: field, unit: 2}", with: "lamp-02: {profile: ref-luminaire, bus: flaky, unit: 2}")
        return c
    }

    // MARK: - The centre on the wire

    /// `mosquitto_sub -v` on everything the gateway publishes, started before the agent.
    final class Centre {
        let child: ChildProcess
        init(port: Int) throws {
            child = try ChildProcess(which("mosquitto_sub") ?? "/usr/bin/mosquitto_sub",
                                     ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-v", "-t", "edge/v1/test-gw/#",
                                      "-i", "centre-\(UUID().uuidString.prefix(6))"])
            Thread.sleep(forTimeInterval: 0.2)
        }

        var messages: [(topic: String, body: [String: Any])] {
            child.stdout.split(separator: "\n").compactMap { line in
                guard let space = line.firstIndex(of: " ") else { return nil }
                let body = (try? JSONSerialization.jsonObject(with: Data(line[line.index(after: space)...].utf8))) as? [String: Any]
                return body.map { (String(line[..<space]), $0) }
            }
        }

        /// The `active` flags published on `alarm/<device>/<code>`, in order.
        func alarm(_ device: String, _ code: String) -> [Bool] {
            messages.filter { $0.topic == "edge/v1/test-gw/alarm/\(device)/\(code)" }.compactMap { $0.body["active"] as? Bool }
        }

        /// Seqs missing between the first and the last received.
        var seqGaps: [Int] {
            let seqs = messages.compactMap { $0.body["seq"] as? Int }
            guard let lo = seqs.min(), let hi = seqs.max() else { return [] }
            let have = Set(seqs)
            return (lo...hi).filter { !have.contains($0) }
        }
    }

    // MARK: - Unit faults injected in edge-sim

    @Test func aUnitAnsweringExceptionsIsOfflineWithAnAlarmUntilItAnswersAgain() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let centre = try Centre(port: broker.port)
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { Self.setpoint(rig, "lamp-02") == 30 && Self.online(rig, "lamp-02") == true })
        let lateAtStart = try Self.worstLate(rig)
        let cycles = 3
        var hits = 0
        var detect: [String] = [], recover: [String] = []
        for cycle in 1...cycles {
            _ = try rig.simControl("fault lamp-02 exception 4")
            let offline = Self.timed(.seconds(5)) { Self.online(rig, "lamp-02") == false }
            detect.append(Self.ms(offline))
            #expect(offline != nil, "cycle \(cycle): lamp-02 not reported offline")
            let status = try rig.status()
            #expect(Self.hasAlarm(status, "lamp-02", "comm_lost"))
            #expect((Self.device(status, "lamp-02")?["error"] as? String)?.contains("exception 4") == true,
                    "the technician sees the exception: \(Self.device(status, "lamp-02") ?? [:])")
            // The others keep working while lamp-02 refuses.
            if cycle == 1 { #expect(try Self.presenceStillBoosts(rig)) }
            #expect(Wait.until(timeout: .seconds(5)) { centre.alarm("lamp-02", "comm_lost").filter { $0 }.count == cycle })
            let reply = try rig.simControl("fault lamp-02 none")
            hits += reply["hits"] as? Int ?? 0
            let back = Self.timed(.seconds(8)) { Self.online(rig, "lamp-02") == true }
            recover.append(Self.ms(back))
            #expect(back != nil, "cycle \(cycle): lamp-02 not back")
            #expect(!Self.hasAlarm(try rig.status(), "lamp-02", "comm_lost"))
            #expect(Wait.until(timeout: .seconds(5)) { centre.alarm("lamp-02", "comm_lost").last == false })
        }
        #expect(hits >= cycles * 2, "exceptions answered: \(hits)")
        // Back in service: it follows the group again.
        #expect(try Self.presenceStillBoosts(rig, lamps: ["lamp-01", "lamp-02"]))
        let others = Self.alarms(try rig.status()).filter { $0.device != "lamp-02" }
        #expect(others.isEmpty, "\(others)")
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try Self.uplinkLostNothing(rig))
        #expect(centre.seqGaps.isEmpty, "seq gaps on the wire: \(centre.seqGaps)")
        #expect(try rig.safetyViolations() == 0)
        Self.report("exception", "cycles=\(cycles) exceptions_answered=\(hits) offline_after_ms=\(detect) back_after_ms=\(recover) "
                    + "alarm_msgs=\(centre.alarm("lamp-02", "comm_lost")) seqs=\(centre.messages.count) worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
    }

    @Test func aSlowUnitIsOfflineAndItsLateAnswersAreNeverTakenForAnotherUnit() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { Self.online(rig, "lamp-02") == true && Self.online(rig, "lamp-01") == true })
        let lateAtStart = try Self.worstLate(rig)
        // Mark lamp-02's answers: over-temperature (status bit 2, ~90 C). A late lamp-02 answer read
        // as lamp-01's would show up as an over-temperature reading or alarm on lamp-01.
        _ = try rig.simControl("set lamp-02 over_temperature 1")
        _ = try rig.simControl("fault lamp-02 slow 300")   // the bus timeout is 200 ms
        let offline = Self.timed(.seconds(5)) { Self.online(rig, "lamp-02") == false }
        #expect(offline != nil)
        let status = try rig.status()
        #expect(Self.hasAlarm(status, "lamp-02", "comm_lost"))
        #expect((Self.device(status, "lamp-02")?["error"] as? String)?.contains("timeout") == true, "\(Self.device(status, "lamp-02") ?? [:])")
        // The late answers keep coming at every backoff retry; lamp-01 on the same bus keeps working.
        var samples = 0
        var mixedUp: [String] = []
        let boosted = try Self.presenceStillBoosts(rig)
        let clock = ContinuousClock()
        let end = clock.now + .seconds(2.5)
        while clock.now < end {
            let s = try rig.status()
            samples += 1
            let values = Self.device(s, "lamp-01")?["values"] as? [String: Any]
            if let t = Self.number(values, "temperature_c"), t > 50 { mixedUp.append("lamp-01 temperature \(t)") }
            if Self.number(values, "over_temperature") == 1 { mixedUp.append("lamp-01 over_temperature bit") }
            for a in Self.alarms(s) where a.device == "lamp-01" { mixedUp.append("lamp-01 alarm \(a.code)") }
        }
        #expect(boosted)
        #expect(mixedUp.isEmpty, "\(mixedUp)")
        #expect(samples > 5)
        let reply = try rig.simControl("fault lamp-02 none")
        #expect((reply["hits"] as? Int ?? 0) >= 2)
        let back = Self.timed(.seconds(8)) { Self.online(rig, "lamp-02") == true }
        #expect(back != nil)
        #expect(!Self.hasAlarm(try rig.status(), "lamp-02", "comm_lost"))
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try rig.safetyViolations() == 0)
        Self.report("slow", "late_answers=\(reply["hits"] as? Int ?? 0) offline_after_ms=\(Self.ms(offline)) back_after_ms=\(Self.ms(back)) "
                    + "lamp01_samples=\(samples) mixed_up=\(mixedUp.count) worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
    }

    @Test func aBollardIOThatDiesMidMovementStopsMotionRaisesAlarmsAndNeverViolatesSafety() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let centre = try Centre(port: broker.port)
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" && Self.online(rig, "bollard-1") == true })
        let lateAtStart = try Self.worstLate(rig)
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { Self.bool(try? rig.device("bollard-1"), "motor_up") == true })
        // Mid-movement: the I/O answers one more request and then nothing (the next read times
        // out: mid-poll when the one answered was a poll's coil read-back, else at the next poll).
        let heightAtFault = Self.number(try rig.device("bollard-1"), "height") ?? -1
        _ = try rig.simControl("fault bollard-1 silent-after 1")
        let offline = Self.timed(.seconds(5)) { Self.online(rig, "bollard-1") == false }
        #expect(offline != nil)
        let status = try rig.status()
        let agentView = (status["bollards"] as? [String: Any])?["bollard-1"] as? [String: Any]
        #expect(Self.bool(agentView, "motor_up") == false, "the agent commands no motion without I/O: \(agentView ?? [:])")
        #expect(Self.bool(agentView, "motor_down") == false)
        #expect(agentView?["position"] as? String == "fault")
        #expect(Self.hasAlarm(status, "bollard-1", "io_lost"))
        #expect(Self.alarms(status).contains { $0.device == "bollard-1" && $0.code == "io_lost" && $0.severity == "critical" })
        #expect(Self.hasAlarm(status, "bollard-1", "comm_lost"))
        #expect(Wait.until(timeout: .seconds(5)) { centre.alarm("bollard-1", "io_lost").last == true })
        // Motion commands are refused while the I/O is silent.
        let raise = try rig.edgectl(["bollard", "raise", "bollard-1"])
        #expect(raise.status == 1)
        #expect(raise.stderr.contains("device_offline"), "\(raise.stderr)")
        // The rest of the field still works.
        #expect(try Self.presenceStillBoosts(rig))
        #expect(try rig.safetyViolations() == 0)
        // The I/O answers again: the first thing written is every output off; the interrupted rise
        // is not resumed.
        let heightInOutage = Self.number(try rig.device("bollard-1"), "height") ?? -1
        let motorUpInOutage = Self.bool(try rig.device("bollard-1"), "motor_up") ?? false
        _ = try rig.simControl("fault bollard-1 none")
        let back = Self.timed(.seconds(8)) { Self.online(rig, "bollard-1") == true }
        #expect(back != nil)
        let motorOff = Self.timed(.seconds(3)) { Self.bool(try? rig.device("bollard-1"), "motor_up") == false }
        #expect(motorOff != nil)
        #expect(Self.bool(try rig.device("bollard-1"), "motor_down") == false)
        #expect(Wait.until(timeout: .seconds(5)) { !Self.hasAlarm((try? rig.status()) ?? [:], "bollard-1", "io_lost") })
        #expect(!Self.hasAlarm(try rig.status(), "bollard-1", "comm_lost"))
        #expect(Wait.until(timeout: .seconds(5)) { centre.alarm("bollard-1", "io_lost").last == false && centre.alarm("bollard-1", "comm_lost").last == false })
        // It still obeys: lower brings it down.
        #expect(try rig.edgectl(["bollard", "lower", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        let stats = try rig.simControl("stats")
        #expect(stats["safety_violations"] as? Int == 0, "\(stats)")
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try Self.uplinkLostNothing(rig))
        #expect(centre.seqGaps.isEmpty, "seq gaps on the wire: \(centre.seqGaps)")
        Self.report("bollard-silent", "height_at_fault=\(heightAtFault) offline_after_ms=\(Self.ms(offline)) sim_height_in_outage=\(heightInOutage) "
                    + "sim_motor_up_in_outage=\(motorUpInOutage) back_after_ms=\(Self.ms(back)) motor_off_after_back_ms=\(Self.ms(motorOff)) "
                    + "io_lost_msgs=\(centre.alarm("bollard-1", "io_lost")) violations=\(stats["safety_violations"] ?? "?") worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
    }

    // MARK: - A TCP device that resets connections (fault proxy)

    @Test func aTCPDeviceThatResetsOrHangsConnectionsIsOfflineAndRecovers() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let proxy = try FaultProxy(to: rig.simPort)
        let centre = try Centre(port: broker.port)
        try rig.startAgent(config: Self.lamp02OnOwnBus(rig, port: proxy.port))
        #expect(Wait.until(timeout: .seconds(10)) { Self.setpoint(rig, "lamp-02") == 30 && Self.online(rig, "lamp-02") == true })
        let lateAtStart = try Self.worstLate(rig)
        // Resets now and then, mid-transaction (every 5th request): reconnects, keeps following the
        // group. (Two failed polls in a row still mark it offline: that may happen and is counted.)
        proxy.mode = .resetEvery(5)
        #expect(try Self.presenceStillBoosts(rig, lamps: ["lamp-01", "lamp-02"]))
        #expect(Wait.until(timeout: .seconds(6)) { Self.setpoint(rig, "lamp-02") == 30 })
        let intermittent = proxy.stats.resets
        #expect(intermittent >= 3, "resets while following the group: \(proxy.stats)")
        #expect(Self.setpoint(rig, "lamp-01") == 30)
        proxy.mode = .forward
        #expect(Wait.until(timeout: .seconds(8)) { Self.online(rig, "lamp-02") == true })
        let flaps = centre.alarm("lamp-02", "comm_lost").filter { $0 }.count
        // Every connection reset, then a device that hangs with its socket open.
        var outages = 0
        var detect: [String] = [], recover: [String] = []
        for mode in [FaultProxy.Mode.reset, .silent, .reset] {
            proxy.mode = mode
            let offline = Self.timed(.seconds(5)) { Self.online(rig, "lamp-02") == false }
            detect.append("\(mode):\(Self.ms(offline))")
            #expect(offline != nil, "\(mode): not offline")
            #expect(Self.hasAlarm(try rig.status(), "lamp-02", "comm_lost"))
            outages += 1
            #expect(Wait.until(timeout: .seconds(5)) { centre.alarm("lamp-02", "comm_lost").filter { $0 }.count == flaps + outages })
            if mode == .silent { #expect(try Self.presenceStillBoosts(rig)) }
            proxy.mode = .forward
            let back = Self.timed(.seconds(8)) { Self.online(rig, "lamp-02") == true }
            recover.append(Self.ms(back))
            #expect(back != nil, "\(mode): not back")
            #expect(Wait.until(timeout: .seconds(5)) { centre.alarm("lamp-02", "comm_lost").last == false })
            #expect(!Self.hasAlarm(try rig.status(), "lamp-02", "comm_lost"))
        }
        #expect(proxy.stats.resets > intermittent)
        #expect(try Self.presenceStillBoosts(rig, lamps: ["lamp-01", "lamp-02"]))
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try Self.uplinkLostNothing(rig))
        #expect(centre.seqGaps.isEmpty, "seq gaps on the wire: \(centre.seqGaps)")
        #expect(try rig.safetyViolations() == 0)
        Self.report("tcp-proxy", "intermittent_resets=\(intermittent) alarms_while_intermittent=\(flaps) total=\(proxy.stats) offline_after_ms=\(detect) back_after_ms=\(recover) "
                    + "alarm_msgs=\(centre.alarm("lamp-02", "comm_lost")) seqs=\(centre.messages.count) worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
    }

    // MARK: - Garbage on an RS-485 line (tap between pty pairs)

    @Test func garbageAndBadCRCsOnTheRTULineNeverActuateWrongAndTheUnitRecovers() throws {
        let rig = try FieldRig()
        let tap = try RTULineTap(in: rig.scratch)
        let rtuSim = try SimProcess(config: """
            tick: 10ms
            units:
              3: {type: ref-luminaire, name: lamp-03, rated_w: 60}
            """, rtu: tap.devicePath)
        var config = rig.agentConfig()
        config = Self.insert("  rs485: {rtu: \(tap.agentPath), baud: 19200, parity: E, timeout: 200ms, poll: 50ms}", after: "  field: {tcp:", in: config)
        config = Self.insert("  lamp-03: {profile: ref-luminaire, bus: rs485, unit: 3}", after: "devices:", in: config)
        config = config.replacingOccurrences(of: "lamps: [lamp-01, lamp-02]", with: "lamps: [lamp-01, lamp-02, lamp-03]")
        try rig.startAgent(config: config)
        func lamp03() -> [String: Any]? { try? rtuSim.get("lamp-03") }
        var setpoints: Set<Int> = []
        /// Waits for lamp-03 (on the RTU sim) to reach `level`, recording every setpoint seen.
        func lamp03Reaches(_ level: Double, within seconds: Int) -> Bool {
            Wait.until(timeout: .seconds(seconds), interval: .milliseconds(50)) {
                let s = Self.number(lamp03(), "setpoint")
                if let s { setpoints.insert(Int(s)) }
                return s == level
            }
        }
        #expect(Wait.until(timeout: .seconds(10)) { Self.number(lamp03(), "setpoint") == 30 && Self.online(rig, "lamp-03") == true })
        let lateAtStart = try Self.worstLate(rig)

        // Line noise: random bytes before every 10th chunk, both ways, for 2 s at least. The lamp
        // still follows the group (failed writes are retried, a lost unit is retried with backoff)
        // and never receives a value nobody sent.
        let noiseStart = ContinuousClock.now
        tap.mode = .noise(every: 10, bytes: 5)
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(lamp03Reaches(100, within: 10))
        _ = try rig.simControl("set pir-01 presence 0")
        #expect(lamp03Reaches(30, within: 10))
        Thread.sleep(until: noiseStart + .seconds(2))
        // At least five bursts of noise on the line (a unit that drops out is probed at backoff,
        // so the line may carry few chunks: keep the noise on until five went through).
        #expect(Wait.until(timeout: .seconds(15)) { tap.stats.injections >= 5 }, "\(tap.stats)")
        tap.mode = .forward
        let noise = tap.stats
        #expect(setpoints.isSubset(of: [30, 100]), "setpoints seen on lamp-03: \(setpoints.sorted())")
        #expect(Self.number(lamp03(), "fade").map { $0 == 0.5 || $0 == 0.3 } == true, "fade \(String(describing: lamp03()))")
        let afterNoise = Self.timed(.seconds(10)) { Self.online(rig, "lamp-03") == true }
        #expect(afterNoise != nil)

        // Every answer corrupted: offline with an alarm naming the CRC; the TCP bus is unaffected.
        tap.mode = .corruptAnswers
        let offline = Self.timed(.seconds(5)) {
            guard let s = try? rig.status(), let d = Self.device(s, "lamp-03") else { return false }
            return d["online"] as? Bool == false && (d["error"] as? String)?.contains("CRC") == true && Self.hasAlarm(s, "lamp-03", "comm_lost")
        }
        #expect(offline != nil, "\((try? rig.status()).flatMap { Self.device($0, "lamp-03") } ?? [:])")
        #expect(try Self.presenceStillBoosts(rig))
        tap.mode = .forward
        let back = Self.timed(.seconds(10)) { Self.online(rig, "lamp-03") == true }
        #expect(back != nil)
        #expect(!Self.hasAlarm(try rig.status(), "lamp-03", "comm_lost"))
        #expect(tap.stats.corrupted >= 1, "\(tap.stats)")
        // Writes went through while their answers were corrupted (lamp-03 may hold the boost level
        // the agent never saw confirmed): once back, the agent puts it back to the group's level.
        #expect(lamp03Reaches(30, within: 10))

        // Bursts of garbage injected by hand, toward each end; then it still follows the group.
        for i in 0..<10 {
            tap.inject((0..<7).map { _ in UInt8.random(in: 0...255) }, toward: i % 2 == 0 ? .toAgent : .toDevice)
            Thread.sleep(forTimeInterval: 0.03)
        }
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(lamp03Reaches(100, within: 10))
        #expect(Wait.until(timeout: .seconds(5)) { Self.setpoint(rig, "lamp-01") == 100 })
        _ = try rig.simControl("set pir-01 presence 0")
        #expect(setpoints.isSubset(of: [30, 100]), "setpoints seen on lamp-03: \(setpoints.sorted())")
        #expect(Wait.until(timeout: .seconds(10)) { Self.online(rig, "lamp-03") == true })
        #expect(!Self.hasAlarm(try rig.status(), "lamp-03", "comm_lost"))
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try rig.safetyViolations() == 0)
        Self.report("rtu-line", "noise=\(noise) online_again_after_noise_ms=\(Self.ms(afterNoise)) crc_offline_after_ms=\(Self.ms(offline)) "
                    + "back_after_ms=\(Self.ms(back)) total=\(tap.stats) setpoints_seen=\(setpoints.sorted()) worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
        rtuSim.stop()
        tap.stop()
    }

    // MARK: - Chattering inputs

    /// Sends `toggles` level changes of `line` through one control connection with no pause, ending
    /// at `end`: chatter far faster than the debounce.
    static func chatter(_ link: SimControlLink, _ line: String, toggles: Int, end: Bool) throws {
        for i in 0..<toggles {
            let value = (toggles - 1 - i) % 2 == 0 ? end : !end
            try link.send("gpio \(line) \(value ? 1 : 0)")
        }
        for _ in 0..<toggles { _ = link.readLine(timeout: .seconds(2)) }
    }

    @Test func gpioChatterShorterThanTheDebounceNeitherBoostsNorChecksInTwice() throws {
        let rig = try FieldRig()
        let config = rig.agentConfig()   // writes board.yaml; lengthen the debounce of the inputs
        let board = rig.scratch.file("board.yaml")
        let text = try String(contentsOfFile: board, encoding: .utf8).replacingOccurrences(of: "debounce: 5ms", with: "debounce: 100ms")
        _ = rig.scratch.write("board.yaml", text)
        try rig.startAgent(config: config)
        #expect(Wait.until(timeout: .seconds(10)) { Self.setpoint(rig, "lamp-01") == 30 && Self.online(rig, "junction") == true })
        let lateAtStart = try Self.worstLate(rig)
        let link = try SimControlLink(path: rig.simSocket)
        // Presence line chatter that ends low: no boost, not one write to the field.
        Thread.sleep(forTimeInterval: 0.3)
        let writesBefore = try rig.simControl("stats")["writes"] as? Int ?? -1
        for _ in 0..<20 {
            try Self.chatter(link, "presence-a", toggles: 10, end: false)
            Thread.sleep(forTimeInterval: 0.01)
        }
        let clock = ContinuousClock()
        let watchEnd = clock.now + .seconds(1)
        var boosted = false
        while clock.now < watchEnd {
            if Self.setpoint(rig, "lamp-01") != 30 { boosted = true }
            if let s = try? rig.status(), let pir = Self.device(s, "pir-02"), Self.bool(pir, "value") == true { boosted = true }
        }
        #expect(!boosted)
        let writesAfter = try rig.simControl("stats")["writes"] as? Int ?? -2
        #expect(writesAfter == writesBefore, "chatter must not actuate anything")
        // Check-in line chatter that ends high: exactly one bus checked in.
        func approach() -> [String: Any]? { (try? rig.status()["approaches"] as? [String: Any])?["north"] as? [String: Any] }
        for round in 1...2 {
            try Self.chatter(link, "bus-detect-north", toggles: 31, end: true)
            #expect(Wait.until(timeout: .seconds(3)) { Self.number(approach(), "vehicles") == 1 }, "round \(round): \(approach() ?? [:])")
            #expect(Wait.until(timeout: .seconds(3)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == true })
            try link.send("gpio bus-detect-north 0")
            _ = link.readLine()
            // Check-out line chatter that ends low: no check-out.
            try Self.chatter(link, "stopline-north", toggles: 30, end: false)
            Thread.sleep(forTimeInterval: 0.4)
            #expect(Self.number(approach(), "vehicles") == 1, "round \(round): chatter checked out: \(approach() ?? [:])")
            // One clean check-out pulse drops the request: the chatter counted one vehicle only.
            try link.send("gpio stopline-north 1")
            _ = link.readLine()
            Thread.sleep(forTimeInterval: 0.3)
            try link.send("gpio stopline-north 0")
            _ = link.readLine()
            #expect(Wait.until(timeout: .seconds(3)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == false }, "round \(round)")
            #expect(Self.number(approach(), "vehicles") == 0)
            Thread.sleep(forTimeInterval: 0.6)   // min_interval between requests of the approach
        }
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try rig.safetyViolations() == 0)
        Self.report("gpio-chatter", "presence_toggles=200 checkin_toggles=62 checkout_toggles=60 field_writes_during_presence_chatter=\(writesAfter - writesBefore) "
                    + "boosted=\(boosted) worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
    }

    @Test func aChatteringVehicleLoopUnderAStandingVehicleNeverLetsTheBollardRise() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" && Self.online(rig, "bollard-1") == true })
        let lateAtStart = try Self.worstLate(rig)
        _ = try rig.simControl("set bollard-1 loop 1")
        // A vehicle stands on a flaky loop: the detector drops out for ~3 ms every ~15 ms.
        let stop = Flag()
        let dropouts = Counter()
        let chatterer = Thread {
            guard let link = try? SimControlLink(path: rig.simSocket) else { return }
            while !stop.isSet {
                guard (try? link.send("set bollard-1 loop 0")) != nil else { return }
                Thread.sleep(forTimeInterval: 0.003)
                guard (try? link.send("set bollard-1 loop 1")) != nil else { return }
                _ = link.readLine(timeout: .seconds(1))
                _ = link.readLine(timeout: .seconds(1))
                dropouts.add()
                Thread.sleep(forTimeInterval: 0.012)
            }
            _ = try? link.send("set bollard-1 loop 1")
        }
        chatterer.start()
        var accepted = 0, refused = 0
        var rose = false
        let clock = ContinuousClock()
        let end = clock.now + .seconds(3)
        while clock.now < end {
            let r = try rig.edgectl(["bollard", "raise", "bollard-1"])
            if r.status == 0 { accepted += 1 } else { refused += 1 }
            for _ in 0..<4 {
                let b = try rig.device("bollard-1")
                if Self.bool(b, "motor_up") == true || (Self.number(b, "height") ?? 0) > 0 { rose = true }
            }
        }
        stop.set()
        while chatterer.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
        #expect(!rose, "the bollard moved up over the occupied loop")
        #expect(dropouts.value > 50, "dropouts: \(dropouts.value)")
        #expect(refused > 0, "accepted \(accepted), refused \(refused)")
        let stats = try rig.simControl("stats")
        #expect(stats["safety_violations"] as? Int == 0, "\(stats)")
        // The vehicle leaves: the bollard obeys again.
        _ = try rig.simControl("set bollard-1 loop 0")
        #expect(Wait.until(timeout: .seconds(3)) { ((try? rig.status()["bollards"] as? [String: Any])?["bollard-1"] as? [String: Any]).flatMap { Self.bool($0, "loop") } == false })
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(6)) { (try? rig.device("bollard-1")["position"] as? String) == "up" })
        let late = try Self.worstLate(rig)
        #expect(late < Self.lateBoundMicros, "loop worst lateness \(late) us")
        #expect(try rig.safetyViolations() == 0)
        Self.report("loop-chatter", "dropouts=\(dropouts.value) raise_accepted=\(accepted) raise_refused=\(refused) rose=\(rose) worst_late_us=\(late) (\(lateAtStart) by the end of start-up)")
    }
}

extension Thread {
    /// Sleeps until `instant` (no-op when it has passed).
    static func sleep(until instant: ContinuousClock.Instant) {
        let left = instant - ContinuousClock.now
        if left > .zero { Thread.sleep(forTimeInterval: Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18) }
    }
}

/// A thread-safe flag for stopping helper threads.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
}
