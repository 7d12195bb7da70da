/// A topic filter the client keeps subscribed across reconnects.
struct MQTTSubscription: Equatable {
    var filter: String
    var qos: Int
}

/// The MQTT client's bookkeeping: lifecycle, link state, remembered subscriptions and the
/// bounded in-flight window. A pure value (no I/O, no clock, no locks), kept behind the
/// client's one lock; transitions return what must be done after the lock is released
/// (waiters to resume, handlers to call).
///
/// Window invariant: `outstanding.count + reserved <= maxInflight`, where `outstanding` are
/// QoS 1/2 message ids accepted by libmosquitto and not yet acknowledged, and `reserved`
/// are slots held by publish calls that have not returned their message id yet.
///
/// Completion race: libmosquitto's network thread may report a completion (PUBACK, or
/// "sent" for QoS 0) before `mosquitto_publish` has returned the id to its caller. While any
/// publish call is in progress, completions for unknown ids are kept in `earlyCompletions`
/// and claimed by `publishReturned`; the set is emptied whenever no publish is in progress,
/// so it stays bounded.
struct MQTTClientState<Waiter> {
    enum Lifecycle: Equatable {
        case idle, running, stopped
    }

    /// What a publish call may do now.
    enum SlotDecision: Equatable {
        /// Go ahead (a window slot is held for QoS > 0).
        case granted
        /// The window is full (synchronous publish) or the caller was queued (awaiting publish).
        case full
        case queued
        case stopped
        case cancelled
    }

    /// A waiter to resume, and with what.
    struct Resumption {
        var waiter: Waiter
        var result: Result<Void, MQTTError>
    }

    let maxInflight: Int
    private(set) var lifecycle: Lifecycle = .idle
    private(set) var isConnected = false
    private(set) var subscriptions: [MQTTSubscription] = []
    private(set) var outstanding: Set<Int32> = []
    private(set) var reserved = 0
    private(set) var publishing = 0
    private(set) var earlyCompletions: Set<Int32> = []
    private var completionWaiters: [Int32: (token: UInt64, waiter: Waiter)] = [:]
    private var slotWaiters: [(token: UInt64, waiter: Waiter)] = []
    private var cancelledTokens: Set<UInt64> = []
    private var nextToken: UInt64 = 1
    /// Consecutive failed connection attempts since the last CONNACK success.
    private(set) var failedAttempts = 0
    /// The last connection failure, cleared on a successful connect.
    private(set) var lastError: MQTTError?

    init(maxInflight: Int) {
        precondition(maxInflight >= 1, "maxInflight must be >= 1")
        self.maxInflight = maxInflight
    }

    var inflightCount: Int { outstanding.count }
    var waitingForSlot: Int { slotWaiters.count }
    var waitingForCompletion: Int { completionWaiters.count }
    private var windowHasRoom: Bool { outstanding.count + reserved < maxInflight }

    // MARK: Lifecycle and link

    /// idle -> running. Returns whether the network thread must be started.
    mutating func start() -> Bool {
        guard lifecycle == .idle else { return false }
        lifecycle = .running
        return true
    }

    /// Any state -> stopped. Every waiter fails with `.stopped`; the window is emptied
    /// (messages libmosquitto still holds are no longer tracked).
    mutating func stop(error: MQTTError) -> (resume: [Resumption], wasRunning: Bool) {
        let wasRunning = lifecycle == .running
        lifecycle = .stopped
        var resume = slotWaiters.map { Resumption(waiter: $0.waiter, result: .failure(error)) }
        resume += completionWaiters.values.map { Resumption(waiter: $0.waiter, result: .failure(error)) }
        slotWaiters.removeAll()
        completionWaiters.removeAll()
        outstanding.removeAll()
        earlyCompletions.removeAll()
        return (resume, wasRunning)
    }

    /// CONNACK accepted. Returns the subscriptions to renew, or nil if already connected.
    mutating func connected() -> [MQTTSubscription]? {
        failedAttempts = 0
        lastError = nil
        guard !isConnected, lifecycle != .stopped else { return nil }
        isConnected = true
        return subscriptions
    }

    /// The link went down (or never came up). Returns whether it was up (handlers to notify).
    mutating func linkDown() -> Bool {
        defer { isConnected = false }
        return isConnected
    }

    /// A connection attempt failed or an established link broke with `error`.
    /// Returns the 0-based attempt number to derive the backoff from.
    mutating func attemptFailed(_ error: MQTTError) -> Int {
        lastError = error
        defer { failedAttempts += 1 }
        return failedAttempts
    }

    /// Remembers `subscription` (replacing the QoS of an equal filter). Returns whether the
    /// link is up, i.e. whether to send SUBSCRIBE now as well as on every reconnect.
    mutating func remember(_ subscription: MQTTSubscription) -> Bool {
        if let i = subscriptions.firstIndex(where: { $0.filter == subscription.filter }) {
            subscriptions[i] = subscription
        } else {
            subscriptions.append(subscription)
        }
        return isConnected
    }

    // MARK: Window

    /// A fresh token naming one waiting publish (for cancellation).
    mutating func makeToken() -> UInt64 {
        defer { nextToken += 1 }
        return nextToken
    }

    /// Synchronous publish: take a slot now (QoS > 0) or refuse with `.full`.
    mutating func beginPublish(qos: Int) -> SlotDecision {
        if lifecycle == .stopped { return .stopped }
        if qos > 0 {
            guard windowHasRoom else { return .full }
            reserved += 1
        }
        publishing += 1
        return .granted
    }

    /// Awaiting publish: take a slot now, or queue `waiter` (FIFO) until one frees.
    mutating func requestSlot(qos: Int, token: UInt64, waiter: Waiter) -> SlotDecision {
        if lifecycle == .stopped { return .stopped }
        if cancelledTokens.contains(token) { return .cancelled }
        if qos == 0 || (slotWaiters.isEmpty && windowHasRoom) {
            return beginPublish(qos: qos)
        }
        slotWaiters.append((token, waiter))
        return .queued
    }

    /// A caller that holds a slot gives it up without publishing.
    mutating func abandonPublish(qos: Int) -> [Resumption] {
        publishing -= 1
        if qos > 0 { reserved -= 1 }
        clearEarlyCompletionsIfIdle()
        return grantSlots()
    }

    /// `mosquitto_publish` returned. `mid` is nil when the message was not accepted.
    /// `waiter`, if given, is completed when the message completes (maybe at once).
    mutating func publishReturned(mid: Int32?, qos: Int, waiter: (token: UInt64, waiter: Waiter)?) -> [Resumption] {
        publishing -= 1
        if qos > 0 { reserved -= 1 }
        var resume: [Resumption] = []
        if let mid {
            if earlyCompletions.remove(mid) != nil {
                if let waiter { resume.append(Resumption(waiter: waiter.waiter, result: .success(()))) }
            } else {
                if qos > 0 && lifecycle != .stopped { outstanding.insert(mid) }
                if let waiter {
                    if lifecycle == .stopped {
                        resume.append(Resumption(waiter: waiter.waiter, result: .failure(MQTTClientState.stoppedError)))
                    } else if cancelledTokens.contains(waiter.token) {
                        resume.append(Resumption(waiter: waiter.waiter, result: .failure(MQTTClientState.cancelledError)))
                    } else {
                        completionWaiters[mid] = waiter
                    }
                }
            }
        }
        clearEarlyCompletionsIfIdle()
        return resume + grantSlots()
    }

    /// libmosquitto reported message `mid` complete (PUBACK/PUBCOMP, or sent for QoS 0).
    mutating func completed(mid: Int32) -> [Resumption] {
        let wasOutstanding = outstanding.remove(mid) != nil
        var resume: [Resumption] = []
        if let entry = completionWaiters.removeValue(forKey: mid) {
            resume.append(Resumption(waiter: entry.waiter, result: .success(())))
        } else if !wasOutstanding && publishing > 0 {
            earlyCompletions.insert(mid)
        }
        return resume + grantSlots()
    }

    /// The task behind `token` was cancelled: its waiter (if registered) fails now; if not
    /// registered yet, registration will fail it.
    mutating func cancel(token: UInt64) -> [Resumption] {
        if let i = slotWaiters.firstIndex(where: { $0.token == token }) {
            let entry = slotWaiters.remove(at: i)
            return [Resumption(waiter: entry.waiter, result: .failure(MQTTClientState.cancelledError))]
        }
        if let (mid, entry) = completionWaiters.first(where: { $0.value.token == token }) {
            completionWaiters[mid] = nil
            return [Resumption(waiter: entry.waiter, result: .failure(MQTTClientState.cancelledError))]
        }
        cancelledTokens.insert(token)
        return []
    }

    /// The publish behind `token` is over; drop its cancellation mark.
    mutating func forget(token: UInt64) {
        cancelledTokens.remove(token)
    }

    private mutating func grantSlots() -> [Resumption] {
        var resume: [Resumption] = []
        while !slotWaiters.isEmpty && windowHasRoom && lifecycle != .stopped {
            let entry = slotWaiters.removeFirst()
            reserved += 1
            publishing += 1
            resume.append(Resumption(waiter: entry.waiter, result: .success(())))
        }
        return resume
    }

    private mutating func clearEarlyCompletionsIfIdle() {
        if publishing == 0 { earlyCompletions.removeAll() }
    }

    static var stoppedError: MQTTError { MQTTError(kind: .stopped, message: "client stopped before the message completed") }
    static var cancelledError: MQTTError { MQTTError(kind: .cancelled, message: "waiting task cancelled; the message may still be delivered") }
}

/// Capped exponential reconnect backoff: `base * 2^attempt`, at most `cap`, scaled by
/// `jitter` (0.75...1.0 in production, so gateways restarted together spread out).
func mqttReconnectDelay(attempt: Int, base: Duration, cap: Duration, jitter: Double) -> Duration {
    var delay = base
    var n = 0
    while n < attempt && delay < cap {
        delay = delay * 2
        n += 1
    }
    if delay > cap { delay = cap }
    return delay * min(max(jitter, 0), 1)
}
