import EdgeRuntime
import EdgeAgent
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

/// Log lines kept in memory, to assert on warnings.
final class LoopTestLogStore: Sendable {
    private let lines = Mutex<[(Logger.Level, String)]>([])
    func append(_ level: Logger.Level, _ text: String) { lines.withLock { $0.append((level, text)) } }
    func contains(level: Logger.Level, _ fragment: String) -> Bool {
        lines.withLock { $0.contains { $0.0 == level && $0.1.contains(fragment) } }
    }
    var logger: Logger {
        Logger(label: "test.loop") { _ in LoopTestLogHandler(store: self) }
    }
}

struct LoopTestLogHandler: LogHandler {
    let store: LoopTestLogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { store.append(event.level, "\(event.message)") }
}

/// What the loop body saw, in order.
final class LoopTickRecorder: Sendable {
    struct Tick: Sendable {
        var now: MonotonicInstant
        var scheduledFor: MonotonicInstant
    }
    private let ticks = Mutex<[Tick]>([])
    func record(_ now: MonotonicInstant, _ scheduled: MonotonicInstant) { ticks.withLock { $0.append(Tick(now: now, scheduledFor: scheduled)) } }
    var all: [Tick] { ticks.withLock { $0 } }
    var count: Int { ticks.withLock { $0.count } }
}

struct LoopThreadTests {
    /// The names of this process's threads (/proc/self/task/*/comm).
    static func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    @Test func ticksOnTheAbsolutePeriodGridAndReportsStats() throws {
        let rec = LoopTickRecorder()
        let loop = LoopThread(name: "edge-loop-test", period: .milliseconds(10), realtimePriority: 0, logger: Logger(label: "test")) { now, scheduled in
            rec.record(now, scheduled)
        }
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 20 })
        #expect(Self.threadNames().contains("edge-loop-test"), "the loop runs on its own named thread")
        loop.stop()

        let ticks = rec.all
        let start = try #require(ticks.first?.scheduledFor)
        for (i, t) in ticks.enumerated() {
            // Deadlines are start + k·period exactly (no drift), in order, and never run early.
            let offset = (t.scheduledFor - start).nanosecondsClamped
            #expect(offset % 10_000_000 == 0, "tick \(i) scheduled off the grid: \(offset) ns")
            #expect(t.now >= t.scheduledFor)
            if i > 0 { #expect(t.scheduledFor > ticks[i - 1].scheduledFor) }
        }
        let stats = loop.stats
        #expect(stats.ticks == UInt64(ticks.count))
        #expect(stats.lastTick == ticks.last?.now)
        #expect(stats.startedAt != nil)
        #expect(stats.p99Lateness <= stats.worstLateness)
        #expect(!stats.isRealtime)
        #expect(!stats.isRunning)
    }

    @Test func stopJoinsTheThread() {
        let afterStop = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(false)
        let loop = LoopThread(name: "edge-loop-stop", period: .milliseconds(1), realtimePriority: 0, logger: Logger(label: "test")) { _, _ in
            if stopped.load(ordering: .sequentiallyConsistent) { afterStop.store(true, ordering: .sequentiallyConsistent) }
        }
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 3 })
        loop.stop()
        stopped.store(true, ordering: .sequentiallyConsistent)
        let ticks = loop.stats.ticks
        Wait.until(timeout: .milliseconds(50)) { false }
        #expect(loop.stats.ticks == ticks)
        let ranAfterStop = afterStop.load(ordering: .sequentiallyConsistent)
        #expect(!ranAfterStop)
        loop.stop()  // idempotent
    }

    @Test func stopWithATimeoutDoesNotWaitOnAStuckBody() {
        let release = Atomic<Bool>(false)
        let stuck = Atomic<Bool>(false)
        let loop = LoopThread(name: "edge-loop-stuck", period: .milliseconds(1), realtimePriority: 0, logger: Logger(label: "test")) { _, _ in
            stuck.store(true, ordering: .sequentiallyConsistent)
            while !release.load(ordering: .sequentiallyConsistent) { usleep(1000) }
        }
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { stuck.load(ordering: .sequentiallyConsistent) })
        let before = MonotonicInstant.now()
        #expect(loop.stop(timeout: .milliseconds(200)) == false, "a stuck body is reported")
        let waited = MonotonicInstant.now() - before
        #expect(waited >= .milliseconds(200) && waited < .seconds(2), "waited \(waited)")
        release.store(true, ordering: .sequentiallyConsistent)
        // The detached thread ends by itself once the body returns; it never runs the body again.
        #expect(Wait.until(timeout: .seconds(5)) { !loop.stats.isRunning })
    }

    @Test func stopWithATimeoutJoinsAHealthyLoop() {
        let loop = LoopThread(name: "edge-loop-healthy", period: .milliseconds(1), realtimePriority: 0, logger: Logger(label: "test")) { _, _ in }
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 3 })
        #expect(loop.stop(timeout: .seconds(1)))
        #expect(!loop.stats.isRunning)
    }

    @Test func wakeRunsTheBodyPromptlyBetweenDeadlines() {
        let rec = LoopTickRecorder()
        let loop = LoopThread(name: "edge-loop-wake", period: .seconds(60), realtimePriority: 0, logger: Logger(label: "test")) { now, scheduled in
            rec.record(now, scheduled)
        }
        loop.start()
        defer { loop.stop() }
        #expect(Wait.until(timeout: .seconds(5)) { rec.count == 1 })  // the first tick runs at start
        let wokenAt = MonotonicInstant.now()
        loop.wake()
        #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(1)) { rec.count == 2 })
        let woken = rec.all.last
        #expect(woken.map { $0.scheduledFor >= wokenAt && $0.now - wokenAt < .seconds(1) } == true)
        #expect(loop.stats.wakeups == 1)
        #expect(loop.stats.worstWakeLatency < .seconds(1))
    }

    /// A loop that sleeps: each run is at the deadline the previous run asked for, or `maxSleep`
    /// after it when it asked for none; lateness is measured at each of them.
    @Test func sleepsUntilTheDeadlineTheBodyAsksForOrAtMostMaxSleep() throws {
        let rec = LoopTickRecorder()
        let runs = Atomic<Int>(0)
        // Runs 1-4 ask for a deadline 7 ms on; 5-7 ask for nothing (maxSleep 20 ms applies);
        // then 7 ms again.
        let loop = LoopThread(name: "edge-loop-dl", maxSleep: .milliseconds(20), realtimePriority: 0, logger: Logger(label: "test")) { now, scheduled in
            rec.record(now, scheduled)
            let n = runs.add(1, ordering: .sequentiallyConsistent).newValue
            return (5...7).contains(n) ? nil : now + .milliseconds(7)
        }
        #expect(loop.period == .milliseconds(20), "the watchdog allows for the longest sleep")
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 10 })
        loop.stop()
        let ticks = rec.all
        for i in 1..<ticks.count {
            let asked = (5...7).contains(i) ? Duration.milliseconds(20) : .milliseconds(7)
            #expect(ticks[i].scheduledFor == ticks[i - 1].now + asked, "run \(i + 1) scheduled \(ticks[i].scheduledFor - ticks[i - 1].now) after the run before")
            #expect(ticks[i].now >= ticks[i].scheduledFor)
        }
        let stats = loop.stats
        #expect(stats.wakeups == 0 && stats.pastDeadlines == 0 && stats.missedPeriods == 0)
        #expect(stats.p99Lateness <= stats.worstLateness)
        #expect(stats.runsPerSecond > 0)
    }

    /// A body that asks for a deadline not after its own run does not make the loop spin.
    @Test func aDeadlineInThePastIsCountedAndTheLoopWaitsTheMinimumGap() throws {
        let rec = LoopTickRecorder()
        let loop = LoopThread(name: "edge-loop-past", maxSleep: .seconds(1), realtimePriority: 0, logger: Logger(label: "test")) { now, scheduled in
            rec.record(now, scheduled)
            return now
        }
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 5 })
        loop.stop()
        let ticks = rec.all
        for i in 1..<ticks.count { #expect(ticks[i].scheduledFor == ticks[i - 1].now + LoopThread.minimumGap) }
        #expect(loop.stats.pastDeadlines >= 4)
    }

    /// With a grid, the loop meets the grid's points as well as the body's deadlines.
    @Test func aGridIsMetBesideTheBodysDeadlines() throws {
        let rec = LoopTickRecorder()
        let loop = LoopThread(name: "edge-loop-grid", maxSleep: .seconds(1), grid: .milliseconds(10), realtimePriority: 0, logger: Logger(label: "test")) { now, scheduled in
            rec.record(now, scheduled)
            return now + .milliseconds(3)
        }
        #expect(loop.period == .milliseconds(10))
        loop.start()
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 30 })
        loop.stop()
        let ticks = rec.all
        let start = try #require(ticks.first?.scheduledFor)
        // Every run is at the body's deadline or at the grid point before it.
        for i in 1..<ticks.count {
            let onGrid = (ticks[i].scheduledFor - start).nanosecondsClamped % 10_000_000 == 0
            #expect(ticks[i].scheduledFor == ticks[i - 1].now + .milliseconds(3) || (onGrid && ticks[i].scheduledFor < ticks[i - 1].now + .milliseconds(3)),
                    "run \(i + 1) at \(ticks[i].scheduledFor - start) after the start")
        }
    }

    @Test func realtimeRefusedIsAWarningAndTheLoopStillRuns() {
        let logs = LoopTestLogStore()
        // Priority 1000 is outside SCHED_FIFO's 1-99: always refused, even for root.
        let loop = LoopThread(name: "edge-loop-rt", period: .milliseconds(5), realtimePriority: 1000, logger: logs.logger) { _, _ in }
        loop.start()
        defer { loop.stop() }
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 3 })
        #expect(!loop.stats.isRealtime)
        #expect(logs.contains(level: .warning, "normal scheduling"))
    }

    @Test func healthGoesBadWhileABodyIsBlockedAndRecovers() {
        let block = Atomic<Bool>(false)
        let gate = DispatchSemaphore(value: 0)
        let loop = LoopThread(name: "edge-loop-stall", period: .milliseconds(5), realtimePriority: 0, logger: Logger(label: "test")) { _, _ in
            if block.load(ordering: .sequentiallyConsistent) { gate.wait() }
        }
        let health = LoopHealth(loops: [loop], periods: 10, atLeast: .milliseconds(100))
        #expect(!health.isHealthy(now: .now()), "not started yet")
        loop.start()
        // At once, before its thread may have run at all: the agent's watchdog checks right after start.
        #expect(health.isHealthy(now: .now()), "reported as not running right after start(): \(health.stalls(now: .now()))")
        defer {
            block.store(false, ordering: .sequentiallyConsistent)
            gate.signal()
            loop.stop()
        }
        #expect(Wait.until(timeout: .seconds(5)) { loop.stats.ticks >= 2 && health.isHealthy(now: .now()) })

        block.store(true, ordering: .sequentiallyConsistent)
        #expect(Wait.until(timeout: .seconds(5)) { !health.isHealthy(now: .now()) })
        let stall = health.stalls(now: .now()).first
        #expect(stall?.loop == "edge-loop-stall")
        #expect(stall?.allowance == .milliseconds(100))

        block.store(false, ordering: .sequentiallyConsistent)
        gate.signal()
        #expect(Wait.until(timeout: .seconds(5)) { health.isHealthy(now: .now()) })
        #expect(loop.stats.missedPeriods > 0)
    }

    @Test func healthAllowanceIsTheLargerOfPeriodsAndFloor() {
        let health = LoopHealth(loops: [], periods: 10, atLeast: .seconds(1))
        #expect(health.allowance(period: .milliseconds(10)) == .seconds(1))
        #expect(health.allowance(period: .milliseconds(100)) == .seconds(1))
        // A loop that sleeps up to its period between deadlines is not stalled while it sleeps.
        #expect(health.allowance(period: .milliseconds(500)) == .milliseconds(1500))
        #expect(health.allowance(period: .seconds(1)) == .seconds(2))
        #expect(health.isHealthy(now: .now()))
        var stats = LoopStats()
        stats.isRunning = true
        stats.startedAt = MonotonicInstant(nanoseconds: 0)
        stats.lastTick = MonotonicInstant(nanoseconds: 1_000_000_000)
        #expect(health.stall(name: "l", period: .milliseconds(10), stats: stats, now: MonotonicInstant(nanoseconds: 2_000_000_000)) == nil)
        #expect(health.stall(name: "l", period: .milliseconds(10), stats: stats, now: MonotonicInstant(nanoseconds: 2_000_000_001))?.silentFor == .nanoseconds(1_000_000_001))
    }
}
