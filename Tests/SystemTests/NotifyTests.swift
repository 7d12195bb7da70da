#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The real edge-agent under a stand-in for systemd's notify socket: READY=1 and STATUS= once
/// it runs, WATCHDOG=1 every half watchdog interval while the control loop ticks, none while
/// the loop hangs (so systemd would restart it), STOPPING=1 and exit 0 on SIGTERM; and every
/// stderr line carries a syslog priority prefix for journald.
@Suite(.serialized)
struct NotifyTests {
    /// systemd's WatchdogSec for these runs: pings are due every 0.5 s.
    static let watchdog = Duration.seconds(1)

    func start(_ rig: FieldRig, _ listener: NotifyListener, extra: [String: String] = [:]) throws -> ChildProcess {
        var env = [
            "NOTIFY_SOCKET": listener.path,
            "WATCHDOG_USEC": "\(Self.watchdog.components.seconds * 1_000_000)",
            "EDGE_AGENT_TEST_HOOKS": "1",
        ]
        env.merge(extra) { _, new in new }
        return try rig.startAgent(environment: env)
    }

    @Test func readyWithStatusThenWatchdogPingsWithinTheIntervalThenStoppingOnSigterm() throws {
        let rig = try FieldRig()
        let listener = try NotifyListener(path: rig.scratch.file("notify"))
        let agent = try start(rig, listener)

        #expect(Wait.until(timeout: .seconds(10)) { listener.watchdogPings.count >= 6 })
        let first = try #require(listener.messages.first, "nothing on NOTIFY_SOCKET")
        #expect(first.assignments.contains("READY=1"), "first datagram: \(first.text)")
        let status = first.assignments.first { $0.hasPrefix("STATUS=") }
        #expect(status?.contains("test-gw") == true, "STATUS= names the gateway: \(first.text)")
        #expect(status?.contains("\n") != true)

        // systemd needs a ping within every WatchdogSec; the agent sends one per half interval.
        let pings = listener.watchdogPings
        let gaps = zip(pings.dropFirst(), pings).map { ($0 - $1).seconds }
        #expect(gaps.allSatisfy { $0 < Self.watchdog.seconds }, "gaps between WATCHDOG=1: \(gaps)")
        #expect(gaps.allSatisfy { $0 > Self.watchdog.seconds / 4 }, "pings much faster than half the interval: \(gaps)")

        agent.signal(SIGTERM)
        #expect(agent.waitExit(timeout: .seconds(10)) == 0)
        #expect(listener.first("STOPPING=1") != nil, "messages: \(listener.messages.map(\.text))")

        // journald: every line on stderr starts with a syslog priority <0>..<7>.
        let lines = agent.stderr.split(separator: "\n")
        #expect(!lines.isEmpty)
        let unprefixed = lines.filter { $0.range(of: #"^<[0-7]>"#, options: .regularExpression) == nil }
        #expect(unprefixed.isEmpty, "stderr lines without a priority prefix: \(unprefixed.prefix(5))")
        #expect(lines.contains { $0.hasPrefix("<6>") && $0.contains("edge-agent started") })
    }

    @Test func aHungControlLoopStopsTheWatchdogPingsAndTheyResumeWhenItRecovers() throws {
        let rig = try FieldRig()
        let listener = try NotifyListener(path: rig.scratch.file("notify"))
        let agent = try start(rig, listener)
        #expect(Wait.until(timeout: .seconds(10)) { listener.watchdogPings.count >= 2 })

        // Blocks the control loop thread for 5 s (test hook). The reply comes only after the
        // hang (or the agent's own 3 s timeout), so it is not waited for here.
        let hang = Duration.seconds(5)
        let t0 = ContinuousClock.now
        let request = #"{"verb":"debug.hang-loop","args":{"duration_s":\#(hang.components.seconds)}}"#
        _ = try controlRequest(socketPath: rig.agentSocket, request, timeout: .milliseconds(100))

        // Pings resume once the loop runs again.
        #expect(Wait.until(timeout: .seconds(15)) { listener.watchdogPings.contains { $0 > t0 + hang + .milliseconds(200) } })
        let pings = listener.watchdogPings
        // The loop's allowance is 2 s (it sleeps up to 1 s, plus 1 s), plus at most one ping
        // interval (0.5 s) and some slack for a loaded machine: from t0 + 3.5 s until the hang
        // ends (3 pings' worth) there must be none.
        let during = pings.filter { $0 > t0 + .milliseconds(3500) && $0 < t0 + hang }
        #expect(during.isEmpty, "WATCHDOG=1 while the loop hung, at \(during.map { ($0 - t0).seconds }) s")
        let gaps = zip(pings.dropFirst(), pings).map { ($0 - $1).seconds }
        #expect((gaps.max() ?? 0) > 2 * Self.watchdog.seconds, "systemd would not have seen a missed ping: \(gaps)")
        #expect(agent.isRunning)
        // The reason is logged as critical (<2>) for the journal.
        #expect(agent.stderr.split(separator: "\n").contains { $0.hasPrefix("<2>") && $0.contains("WATCHDOG=1") })

        agent.signal(SIGTERM)
        #expect(agent.waitExit(timeout: .seconds(10)) == 0)
    }

    /// What systemd does when the pings stop (the unit's WatchdogSignal=SIGTERM, then SIGKILL
    /// after TimeoutAbortSec): the safety writes still reach the bollard while the loop is stuck.
    @Test func aWatchdogStopDuringAHungLoopStillCutsTheBollardMotor() throws {
        func bool(_ d: [String: Any], _ k: String) -> Bool { (d[k] as? Bool) ?? ((d[k] as? Int).map { $0 != 0 } ?? false) }
        let rig = try FieldRig()
        let listener = try NotifyListener(path: rig.scratch.file("notify"))
        let agent = try start(rig, listener)
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { (try? bool(rig.device("bollard-1"), "motor_up")) == true })

        _ = try controlRequest(socketPath: rig.agentSocket, #"{"verb":"debug.hang-loop","args":{"duration_s":30}}"#, timeout: .milliseconds(100))
        // The loop thread logs this as it starts blocking.
        #expect(Wait.until(timeout: .seconds(2)) { agent.stderr.contains("control loop blocked on purpose") })
        agent.signal(SIGTERM)
        #expect(Wait.until(timeout: .seconds(3)) { listener.first("STOPPING=1") != nil })
        #expect(Wait.until(timeout: .seconds(3)) {
            guard let b = try? rig.device("bollard-1") else { return false }
            return !bool(b, "motor_up") && !bool(b, "motor_down")
        }, "motor coils still on: \((try? rig.device("bollard-1")) ?? [:])")
        #expect(try rig.safetyViolations() == 0)
        #expect(agent.isRunning, "the loop is still stuck: the writes came from the stop path, not the loop")
        agent.kill9()  // systemd's SIGKILL after TimeoutAbortSec: the stuck loop never returns in time
    }

    @Test func aValidReloadKeepsThePingsGoing() throws {
        let rig = try FieldRig()
        let listener = try NotifyListener(path: rig.scratch.file("notify"))
        let agent = try start(rig, listener)
        #expect(Wait.until(timeout: .seconds(10)) { listener.watchdogPings.count >= 2 })
        let t0 = ContinuousClock.now
        _ = rig.scratch.write("agent.yaml", rig.agentConfig(telemetry: "3s"))
        agent.signal(SIGHUP)
        #expect(Wait.until(timeout: .seconds(10)) { agent.stderr.contains("config reloaded") })
        #expect(Wait.until(timeout: .seconds(10)) { listener.watchdogPings.filter { $0 > t0 }.count >= 4 })
        let pings = listener.watchdogPings
        let gaps = zip(pings.dropFirst(), pings).map { ($0 - $1).seconds }
        #expect(gaps.allSatisfy { $0 < Self.watchdog.seconds }, "gaps between WATCHDOG=1 across the reload: \(gaps)")
        #expect(!agent.stderr.contains("<2>"), "nothing critical on a good reload: \(agent.stderr)")
        agent.signal(SIGTERM)
        #expect(agent.waitExit(timeout: .seconds(10)) == 0)
    }

    @Test func aWatchdogMeantForAnotherProcessSendsReadyButNoPings() throws {
        let rig = try FieldRig()
        let listener = try NotifyListener(path: rig.scratch.file("notify"))
        let agent = try start(rig, listener, extra: ["WATCHDOG_PID": "1"])
        #expect(Wait.until(timeout: .seconds(10)) { listener.first("READY=1") != nil })
        Thread.sleep(forTimeInterval: 1.2)
        #expect(listener.watchdogPings.isEmpty)
        agent.signal(SIGTERM)
        #expect(agent.waitExit(timeout: .seconds(10)) == 0)
    }
}
