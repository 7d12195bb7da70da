import CSystemShims
#if canImport(Glibc)
import Glibc
#endif

/// The one lock of the project: a pthread mutex with priority inheritance (PTHREAD_PRIO_INHERIT)
/// and a condition variable on CLOCK_MONOTONIC that belongs to it.
///
/// Priority inheritance matters because the control loop runs SCHED_FIFO and waits on locks that
/// normal-priority threads (commands, uplink) take: the holder is boosted while the loop waits.
/// The condition variable waits until an absolute `MonotonicInstant`, so wall-clock jumps never
/// stretch or cut a wait. Not recursive. ThreadSanitizer sees it (it is a pthread mutex).
///
/// Invariants: `wait` is called with the lock held; `lock`/`unlock` pair on one thread.
/// `@unchecked Sendable`: the mutex and condition live in heap memory this class owns and frees;
/// pthread calls are the only access to them. This file holds the project's only unchecked
/// locks (`Lock`, `Locked`, and the loop's `WakeWord`); everything else is checked by the compiler.
public final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        var mattr = pthread_mutexattr_t()
        pthread_mutexattr_init(&mattr)
        pthread_mutexattr_setprotocol(&mattr, Int32(PTHREAD_PRIO_INHERIT))
        let rc = pthread_mutex_init(mutex, &mattr)
        pthread_mutexattr_destroy(&mattr)
        precondition(rc == 0, "pthread_mutex_init failed: errno \(rc)")
        var cattr = pthread_condattr_t()
        pthread_condattr_init(&cattr)
        pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC)
        let crc = pthread_cond_init(cond, &cattr)
        pthread_condattr_destroy(&cattr)
        precondition(crc == 0, "pthread_cond_init failed: errno \(crc)")
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Takes the lock (pthread_mutex_lock).
    public func lock() {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: errno \(rc)")
    }

    /// Takes the lock if it can before the absolute `deadline`; false if not. It retries
    /// pthread_mutex_trylock every millisecond (a PI mutex has no portable monotonic timed lock):
    /// for rare waits such as a shutdown waiting out a step, not for hot paths.
    public func lock(before deadline: MonotonicInstant) -> Bool {
        while true {
            let rc = pthread_mutex_trylock(mutex)
            if rc == 0 { return true }
            precondition(rc == EBUSY, "pthread_mutex_trylock failed: errno \(rc)")
            if MonotonicInstant.now() >= deadline { return false }
            MonotonicInstant.sleep(for: .milliseconds(1))
        }
    }

    /// Releases the lock (pthread_mutex_unlock); only the thread that took it may.
    public func unlock() {
        let rc = pthread_mutex_unlock(mutex)
        precondition(rc == 0, "pthread_mutex_unlock failed: errno \(rc)")
    }

    /// Runs `body` with the lock held.
    @inlinable
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// With the lock held: releases it, sleeps until `signal`/`broadcast` (or a spurious wake-up),
    /// takes it again (pthread_cond_wait). Re-check the awaited state in a loop.
    public func wait() {
        _ = pthread_cond_wait(cond, mutex)
    }

    /// Like `wait()`, but gives up at the absolute `deadline`; returns false when it has passed
    /// (pthread_cond_clockwait on CLOCK_MONOTONIC), true when woken before it.
    @discardableResult
    public func wait(until deadline: MonotonicInstant) -> Bool {
        var ts = deadline.timespec
        return edge_cond_wait_monotonic(cond, mutex, &ts) != ETIMEDOUT
    }

    /// glibc's kind word of the mutex (tests read the priority-inheritance bit).
    var mutexKind: Int32 { mutex.pointee.__data.__kind }

    /// Wakes one waiter (with or without the lock held).
    public func signal() { pthread_cond_signal(cond) }

    /// Wakes every waiter (with or without the lock held).
    public func broadcast() { pthread_cond_broadcast(cond) }
}

/// A value that only one thread at a time may touch: `State` behind a `Lock`. The replacement for
/// `Synchronization.Mutex` (same `withLock` shape), plus waiting for the state to change.
///
/// `@unchecked Sendable`: `state` is read and written only inside `withLock`/`wait`, lock held,
/// and values cross in and out as `sending` (as with `Mutex`), so no reference escapes unguarded.
public final class Locked<State>: @unchecked Sendable {
    private let lock = Lock()
    private var state: State

    public init(_ initial: sending State) {
        state = initial
    }

    #if compiler(>=6.1)
    /// Runs `body` on the state with the lock held.
    public func withLock<R, E: Error>(_ body: (inout sending State) throws(E) -> sending R) throws(E) -> sending R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
    #else
    /// Runs `body` on the state with the lock held. (Swift 6.0, Debian 13's: its region checker
    /// refuses an `inout sending` state touched by non-Sendable values, so the state is plain
    /// `inout` there; 6.1 and later check the `sending` form.)
    public func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
    #endif

    /// Runs `ready` on the state (lock held) now and each time a `signal`/`broadcast` wakes this
    /// thread, until it returns non-nil; returns that. With a `deadline`, gives up once it has
    /// passed (after one last `ready`) and returns nil. (Before Swift 6.1 the state is plain
    /// `inout`, as in `withLock`.)
    #if compiler(>=6.1)
    public func wait<R>(until deadline: MonotonicInstant? = nil, _ ready: (inout sending State) -> sending R?) -> sending R? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let result = ready(&state) { return result }
            if !sleep(until: deadline) { return ready(&state) }
        }
    }
    #else
    public func wait<R>(until deadline: MonotonicInstant? = nil, _ ready: (inout State) -> R?) -> R? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let result = ready(&state) { return result }
            if !sleep(until: deadline) { return ready(&state) }
        }
    }
    #endif

    /// One sleep of `wait` (lock held): until woken, or until `deadline` at the latest; false once
    /// the deadline has passed.
    private func sleep(until deadline: MonotonicInstant?) -> Bool {
        guard let deadline else {
            lock.wait()
            return true
        }
        return lock.wait(until: deadline)
    }

    /// Wakes one thread in `wait`.
    public func signal() { lock.signal() }

    /// Wakes every thread in `wait`.
    public func broadcast() { lock.broadcast() }
}

/// A flag set once and waited for: "this thread has exited", "stop was asked".
public final class Event: Sendable {
    private let isSet = Locked(false)

    public init() {}

    /// Sets the flag and wakes every waiter (idempotent).
    public func set() {
        isSet.withLock { $0 = true }
        isSet.broadcast()
    }

    /// Whether the flag is set.
    public var isSignalled: Bool { isSet.withLock { $0 } }

    /// Blocks until the flag is set.
    public func wait() {
        _ = isSet.wait { $0 ? () : nil }
    }

    /// Blocks until the flag is set or the absolute `deadline` passes; returns whether it is set.
    @discardableResult
    public func wait(until deadline: MonotonicInstant) -> Bool {
        isSet.wait(until: deadline) { $0 ? true : nil } ?? false
    }
}

/// A word one thread sleeps on until another changes it or an absolute `MonotonicInstant`
/// passes (a process-private futex): the control loop's sleep. Coming back from a timeout takes
/// no lock, where a condition variable re-takes its mutex first; under load that shortens the
/// wake-up tail of a SCHED_FIFO loop (Benchmarks: loop rows).
///
/// Protocol, so that no change is missed: the sleeper reads `value`, then checks its state
/// (under its own lock), then `wait(while:until:)` with the value it read; whoever changes that
/// state calls `bump()` after the change. A change between the check and the wait has bumped
/// the word, and the wait returns at once.
///
/// `@unchecked Sendable`: the word lives in heap memory this class owns and frees; atomic loads,
/// atomic increments and the futex calls are the only access to it.
public final class WakeWord: @unchecked Sendable {
    private let word: UnsafeMutablePointer<UInt32>

    public init() {
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
    }

    deinit { word.deallocate() }

    /// The word now (an atomic load).
    public var value: UInt32 { edge_wake_word_load(word) }

    /// Sleeps while the word still holds `expected`, until a `bump()` or the absolute `deadline`;
    /// false once the deadline has passed. May return early (a signal): re-check in a loop.
    @discardableResult
    public func wait(while expected: UInt32, until deadline: MonotonicInstant) -> Bool {
        var ts = deadline.timespec
        return edge_wake_word_wait(word, expected, &ts) != ETIMEDOUT
    }

    /// Changes the word and wakes every thread sleeping on it.
    public func bump() { edge_wake_word_bump(word) }
}
