import EdgeRuntime
@testable import EdgeAgent
import Foundation
import Logging
import Testing

/// The supervisor's rules: ordered start, reverse-order stop under one deadline, a required
/// service's failure undoes the start, a degradable one is retried with its alarm.
@Suite struct ServiceSupervisorTests {
    /// A service that records what happens to it in a shared journal.
    final class Probe: AgentService {
        let name: String
        let journal: Journal
        /// Starts that fail before one succeeds.
        private let failures: Locked<Int>
        init(_ name: String, journal: Journal, failures: Int = 0) {
            self.name = name
            self.journal = journal
            self.failures = Locked(failures)
        }
        func start() throws {
            let fail = failures.withLock { n -> Bool in
                guard n > 0 else { return false }
                n -= 1
                return true
            }
            if fail {
                journal.add("start-failed \(name)")
                throw ProbeError(name: name)
            }
            journal.add("start \(name)")
        }
        func stop(deadline: MonotonicInstant) {
            journal.add("stop \(name) \(deadline > MonotonicInstant.now() ? "in-time" : "late")")
        }
    }

    struct ProbeError: Error { let name: String }

    final class Journal: Sendable {
        private let lines = Locked<[String]>([])
        func add(_ s: String) { lines.withLock { $0.append(s) } }
        var all: [String] { lines.withLock { $0 } }
    }

    static let logger = Logger(label: "test")

    /// The alarm codes the contract names for the degradable services (docs: Agent's start order).
    @Test func aDegradableServiceRaisesTheAlarmNamedAfterIt() {
        #expect(Agent.unavailableAlarm("field") == "field_unavailable")
        #expect(Agent.unavailableAlarm("control-socket") == "control_socket_unavailable")
    }

    @Test func startsInOrderAndStopsInReverseOrderUnderOneDeadline() throws {
        let j = Journal()
        let s = ServiceSupervisor(["a", "b", "c"].map { .init(service: Probe($0, journal: j), requirement: .required) },
                                  logger: Self.logger, onDegraded: { _, _ in }, onRecovered: { _ in })
        try s.start()
        #expect(s.running == ["a", "b", "c"])
        s.stop(deadline: MonotonicInstant.now() + .seconds(5))
        #expect(j.all == ["start a", "start b", "start c", "stop c in-time", "stop b in-time", "stop a in-time"])
        #expect(s.running.isEmpty)
    }

    @Test func aRequiredServiceThatFailsStopsTheOnesStartedAndThrows() {
        let j = Journal()
        let s = ServiceSupervisor([
            .init(service: Probe("a", journal: j), requirement: .required),
            .init(service: Probe("b", journal: j), requirement: .required),
            .init(service: Probe("c", journal: j, failures: 1), requirement: .required),
            .init(service: Probe("d", journal: j), requirement: .required),
        ], logger: Self.logger, onDegraded: { _, _ in }, onRecovered: { _ in })
        #expect(throws: ProbeError.self) { try s.start() }
        #expect(j.all == ["start a", "start b", "start-failed c", "stop b in-time", "stop a in-time"])
    }

    @Test func aDegradableServiceThatFailsRaisesItsAlarmTheRestRunsAndItIsRetried() throws {
        let j = Journal()
        let alarms = Journal()
        let s = ServiceSupervisor([
            .init(service: Probe("field", journal: j), requirement: .required),
            .init(service: Probe("control-socket", journal: j, failures: 1), requirement: .degradable),
            .init(service: Probe("watchdog", journal: j), requirement: .required),
        ], logger: Self.logger, onDegraded: { name, _ in alarms.add("raise \(name)") }, onRecovered: { name in alarms.add("clear \(name)") })
        try s.start()
        #expect(s.running == ["field", "watchdog"])
        #expect(s.degraded == ["control-socket"])
        #expect(alarms.all == ["raise control-socket"])
        // The first retry is after 1 s.
        let deadline = Date().addingTimeInterval(10)
        // `onRecovered` runs just after the service leaves `degraded`: wait for both.
        while (s.degraded == ["control-socket"] || alarms.all.count < 2), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(s.degraded.isEmpty)
        #expect(alarms.all == ["raise control-socket", "clear control-socket"])
        s.stop(deadline: MonotonicInstant.now() + .seconds(5))
        // Stopped in reverse order of when they actually started.
        #expect(j.all.suffix(3) == ["stop control-socket in-time", "stop watchdog in-time", "stop field in-time"])
    }

    @Test func aServiceStillBeingRetriedAtStopIsNotStartedBehindIt() throws {
        let j = Journal()
        let s = ServiceSupervisor([
            .init(service: Probe("field", journal: j), requirement: .required),
            .init(service: Probe("control-socket", journal: j, failures: 1000), requirement: .degradable),
        ], logger: Self.logger, onDegraded: { _, _ in }, onRecovered: { _ in })
        try s.start()
        s.stop(deadline: MonotonicInstant.now() + .seconds(5))
        Thread.sleep(forTimeInterval: 1.5)
        #expect(j.all == ["start field", "start-failed control-socket", "stop field in-time"])
    }
}

/// The config store's rules: generations, one reload at a time, readers wait for a reload.
@Suite struct ConfigStoreTests {
    static func config() throws -> AgentConfig {
        let fixture = ConfigFixture()
        return try fixture.load(fixture.baseText)
    }

    @Test func aFailedReloadKeepsConfigAndGeneration() throws {
        let store = ConfigStore(try Self.config())
        #expect(store.current.number == 1)
        struct Refused: Error {}
        #expect(throws: Refused.self) { _ = try store.reload { _ in throw Refused() } }
        #expect(store.current.number == 1)
        var next = try Self.config()
        next.gateway.id = "cab-2"
        let g = try store.reload { running in
            #expect(running.number == 1)
            return next
        }
        #expect(g.number == 2)
        #expect(store.current.config.gateway.id == "cab-2")
    }

    @Test func reloadsRunOneAtATimeAndReadersWaitForTheResult() throws {
        let store = ConfigStore(try Self.config())
        let inside = Locked(0)
        let most = Locked(0)
        let seen = Locked<[Int]>([])
        let threads = (0..<4).map { _ in
            Thread {
                for _ in 0..<5 {
                    _ = try? store.reload { running in
                        let n = inside.withLock { $0 += 1; return $0 }
                        most.withLock { $0 = max($0, n) }
                        Thread.sleep(forTimeInterval: 0.005)
                        inside.withLock { $0 -= 1 }
                        return running.config
                    }
                    // A reader never sees a generation "between" reloads go backwards.
                    let g = store.stable().number
                    seen.withLock { $0.append(g) }
                }
            }
        }
        threads.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(20)
        while seen.withLock({ $0.count }) < 20, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(most.withLock { $0 } == 1)
        #expect(store.current.number == 21)
        #expect(seen.withLock { $0.count } == 20)
    }
}
