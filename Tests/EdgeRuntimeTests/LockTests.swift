@testable import EdgeRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LockTests {
    @Test func lockedCountsFromManyThreads() {
        let counter = Locked(0)
        let threads = (0..<4).map { i in
            OSThread.start(name: "count-\(i)") {
                for _ in 0..<10_000 { counter.withLock { $0 += 1 } }
            }
        }
        for t in threads { t.join() }
        #expect(counter.withLock { $0 } == 40_000)
    }

    @Test func waitReturnsWhatTheOtherThreadHandsOver() {
        let box = Locked<Int?>(nil)
        let producer = OSThread.start(name: "producer") {
            box.withLock { $0 = 42 }
            box.broadcast()
        }
        let got = box.wait { $0 }
        producer.join()
        #expect(got == 42)
    }

    @Test func waitGivesUpAtThePastDeadline() {
        let box = Locked(false)
        let got = box.wait(until: MonotonicInstant.now() - .seconds(1)) { $0 ? true : nil }
        #expect(got == nil)
    }

    @Test func lockBeforeDeadlineFailsWhileHeldElsewhere() {
        let lock = Lock()
        let held = Event()
        let release = Event()
        let holder = OSThread.start(name: "holder") {
            lock.lock()
            held.set()
            release.wait()
            lock.unlock()
        }
        held.wait()
        #expect(!lock.lock(before: MonotonicInstant.now()))
        release.set()
        holder.join()
        #expect(lock.lock(before: MonotonicInstant.now() + .seconds(60)))
        lock.unlock()
    }

    @Test func eventStaysSet() {
        let event = Event()
        #expect(!event.isSignalled)
        #expect(!event.wait(until: MonotonicInstant.now()))
        event.set()
        event.set()
        #expect(event.isSignalled)
        #expect(event.wait(until: MonotonicInstant.now()))
        event.wait()
    }

    /// The control loop (SCHED_FIFO) waits on these locks: glibc marks a mutex initialised with
    /// PTHREAD_PRIO_INHERIT in its kind word (PTHREAD_MUTEX_PRIO_INHERIT_NP, 32).
    @Test func lockIsPriorityInheriting() {
        #expect(Lock().mutexKind & 32 != 0)
    }

    @Test func conditionWaitsOnTheMonotonicClock() {
        let lock = Lock()
        lock.lock()
        let start = MonotonicInstant.now()
        let woken = lock.wait(until: start + .milliseconds(20))
        lock.unlock()
        #expect(!woken)
        #expect(MonotonicInstant.now() >= start + .milliseconds(20))
    }
}

/// The control loop's sleep: no bump is lost between reading the word and sleeping on it.
@Suite struct WakeWordTests {
    @Test func waitSleepsUntilTheMonotonicDeadline() {
        let word = WakeWord()
        let start = MonotonicInstant.now()
        let woken = word.wait(while: word.value, until: start + .milliseconds(20))
        #expect(!woken)
        #expect(MonotonicInstant.now() >= start + .milliseconds(20))
        #expect(!word.wait(while: word.value, until: start - .seconds(1)), "a past deadline returns at once")
    }

    /// A bump after the sleeper read the word, before it slept: the wait returns at once.
    @Test func aBumpBeforeTheSleepIsNotLost() {
        let word = WakeWord()
        let seen = word.value
        word.bump()
        #expect(word.value == seen &+ 1)
        let start = MonotonicInstant.now()
        #expect(word.wait(while: seen, until: start + .seconds(60)))
        #expect(MonotonicInstant.now() < start + .seconds(30))
    }

    /// Many bumps from other threads, each waited for by the sleeper following the protocol
    /// (read the word, check the state, sleep): every one is seen, none waits for its deadline.
    @Test func everyBumpWakesTheSleeper() {
        let word = WakeWord()
        let produced = Locked(0)
        let rounds = 2_000
        let producer = OSThread.start(name: "bumper") {
            for _ in 0..<rounds {
                produced.withLock { $0 += 1 }
                word.bump()
            }
        }
        var timeouts = 0
        while true {
            let seen = word.value
            if produced.withLock({ $0 }) == rounds { break }
            if !word.wait(while: seen, until: MonotonicInstant.now() + .seconds(10)) { timeouts += 1 }
        }
        producer.join()
        #expect(timeouts == 0)
    }
}

@Suite struct OSThreadTests {
    @Test func threadCarriesItsName() {
        let name = Locked("")
        let t = OSThread.start(name: "edge-test-name-too-long") {
            let comm = (try? readFile("/proc/thread-self/comm")) ?? ""
            name.withLock { $0 = comm }
        }
        t.join()
        #expect(name.withLock { $0 } == "edge-test-name-\n")
    }

    @Test func realtimeIsGrantedOrRefusedNeverSilent() {
        let got = Locked<OSThread.Scheduling?>(nil)
        let t = OSThread.startRealtime(name: "rt", priority: 10) { scheduling in got.withLock { $0 = scheduling } }
        t.join()
        switch got.withLock({ $0 }) {
        case .realtime(let p)?: #expect(p == 10)
        case .refused(let p, let e)?: #expect(p == 10 && e != 0)
        default: Issue.record("no scheduling outcome")
        }
    }

    @Test func joinFromTheThreadItselfOnlyDetaches() {
        let handle = Locked<OSThread?>(nil)
        let ready = Event()
        let done = Event()
        let t = OSThread.start(name: "self-join") {
            ready.wait()
            handle.withLock { $0 }?.join()
            done.set()
        }
        handle.withLock { $0 = t }
        ready.set()
        done.wait()
    }
}

@Suite struct RuntimeTimeTests {
    @Test func instantArithmetic() {
        let a = MonotonicInstant(nanoseconds: 1_000)
        #expect(a + .microseconds(1) == MonotonicInstant(nanoseconds: 2_000))
        #expect((a + .seconds(2)) - a == .seconds(2))
        #expect(MonotonicInstant(nanoseconds: 2_500_000_001).timespec.tv_sec == 2)
        #expect(MonotonicInstant(nanoseconds: 2_500_000_001).timespec.tv_nsec == 500_000_001)
        #expect(MonotonicInstant(nanoseconds: -5).timespec.tv_sec == 0)
        #expect(Duration.seconds(Int64.max).nanosecondsClamped == .max)
    }

    @Test func sleepUntilAPastInstantReturnsAtOnce() {
        MonotonicInstant.sleep(until: MonotonicInstant(nanoseconds: 0))
        let start = MonotonicInstant.now()
        MonotonicInstant.sleep(for: .milliseconds(5))
        #expect(MonotonicInstant.now() - start >= .milliseconds(5))
    }

    @Test func retryingOnInterruptRetriesOnlyEINTR() {
        var calls = 0
        let r = retryingOnInterrupt { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        #expect(r == 7 && calls == 3)
        calls = 0
        let failed = retryingOnInterrupt { () -> Int in
            calls += 1
            errno = EAGAIN
            return -1
        }
        #expect(failed == -1 && calls == 1 && errno == EAGAIN)
    }
}

private func readFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 64)
    let n = read(fd, &buf, buf.count)
    return String(decoding: buf[..<max(0, n)], as: UTF8.self)
}
