import Testing
@testable import Protocols

/// The client's bookkeeping as a pure value: waiters are plain strings here.
@Suite("MQTT client state machine (pure)")
struct MQTTClientStateTests {
    typealias State = MQTTClientState<String>

    private func succeeded(_ r: [State.Resumption]) -> [String] {
        r.compactMap { if case .success = $0.result { return $0.waiter } else { return nil } }
    }

    private func failed(_ r: [State.Resumption]) -> [String: MQTTError.Kind] {
        var out: [String: MQTTError.Kind] = [:]
        for x in r { if case .failure(let e) = x.result { out[x.waiter] = e.kind } }
        return out
    }

    @Test("window: QoS 1 takes a slot until its completion, QoS 0 never does")
    func window() {
        var s = State(maxInflight: 2)
        #expect(s.beginPublish(qos: 1) == .granted)
        _ = s.publishReturned(mid: 1, qos: 1, waiter: nil)
        #expect(s.beginPublish(qos: 1) == .granted)
        #expect(s.beginPublish(qos: 1) == .full)          // one outstanding + one reserved
        #expect(s.beginPublish(qos: 0) == .granted)       // QoS 0 is not windowed
        _ = s.publishReturned(mid: 9, qos: 0, waiter: nil)
        _ = s.publishReturned(mid: 2, qos: 1, waiter: nil)
        #expect(s.inflightCount == 2)
        _ = s.completed(mid: 1)
        #expect(s.inflightCount == 1)
        #expect(s.beginPublish(qos: 1) == .granted)
        _ = s.publishReturned(mid: nil, qos: 1, waiter: nil)   // refused by libmosquitto: slot released
        #expect(s.inflightCount == 1)
        #expect(s.reserved == 0)
    }

    @Test("a completion that beats publish's return is not lost")
    func earlyCompletion() {
        var s = State(maxInflight: 4)
        #expect(s.beginPublish(qos: 1) == .granted)
        #expect(s.completed(mid: 7).isEmpty)              // PUBACK arrives first
        #expect(s.earlyCompletions == [7])
        let r = s.publishReturned(mid: 7, qos: 1, waiter: (token: 1, waiter: "w7"))
        #expect(succeeded(r) == ["w7"])
        #expect(s.inflightCount == 0)
        #expect(s.earlyCompletions.isEmpty)
    }

    @Test("unknown completions are not remembered when no publish is in progress")
    func strayCompletion() {
        var s = State(maxInflight: 4)
        #expect(s.completed(mid: 3).isEmpty)
        #expect(s.earlyCompletions.isEmpty)
        #expect(s.beginPublish(qos: 0) == .granted)
        _ = s.completed(mid: 4)
        #expect(s.earlyCompletions == [4])
        _ = s.publishReturned(mid: 5, qos: 0, waiter: nil)
        #expect(s.earlyCompletions.isEmpty)               // cleared once no publish is in progress
    }

    @Test("slot waiters are served first-in first-out as completions free slots")
    func slotQueue() {
        var s = State(maxInflight: 1)
        #expect(s.requestSlot(qos: 1, token: 1, waiter: "a") == .granted)
        _ = s.publishReturned(mid: 1, qos: 1, waiter: (1, "a"))
        #expect(s.requestSlot(qos: 1, token: 2, waiter: "b") == .queued)
        #expect(s.requestSlot(qos: 1, token: 3, waiter: "c") == .queued)
        #expect(s.requestSlot(qos: 0, token: 4, waiter: "d") == .granted)   // QoS 0 does not queue
        _ = s.publishReturned(mid: 2, qos: 0, waiter: nil)
        let r = s.completed(mid: 1)
        #expect(Set(succeeded(r)) == ["a", "b"])          // a completes, b gets the slot
        #expect(s.waitingForSlot == 1)
        _ = s.publishReturned(mid: 3, qos: 1, waiter: (2, "b"))
        #expect(succeeded(s.completed(mid: 3)) == ["b", "c"])
    }

    @Test("cancellation fails the queued or registered waiter, or a later registration")
    func cancellation() {
        var s = State(maxInflight: 1)
        #expect(s.requestSlot(qos: 1, token: 1, waiter: "a") == .granted)
        _ = s.publishReturned(mid: 1, qos: 1, waiter: (1, "a"))
        #expect(s.requestSlot(qos: 1, token: 2, waiter: "b") == .queued)
        #expect(failed(s.cancel(token: 2)) == ["b": .cancelled])
        #expect(failed(s.cancel(token: 1)) == ["a": .cancelled])
        #expect(s.inflightCount == 1)                     // still with libmosquitto
        #expect(s.cancel(token: 3).isEmpty)               // not registered yet
        #expect(s.requestSlot(qos: 1, token: 3, waiter: "c") == .cancelled)
        s.forget(token: 3)
        #expect(succeeded(s.completed(mid: 1)).isEmpty)
        #expect(s.inflightCount == 0)
    }

    @Test("stop fails every waiter and empties the window; later publishes are refused")
    func stop() {
        var s = State(maxInflight: 1)
        let first = s.start(), second = s.start()
        #expect(first)
        #expect(!second)
        #expect(s.requestSlot(qos: 1, token: 1, waiter: "a") == .granted)
        _ = s.publishReturned(mid: 1, qos: 1, waiter: (1, "a"))
        #expect(s.requestSlot(qos: 1, token: 2, waiter: "b") == .queued)
        let (r, wasRunning) = s.stop(error: State.stoppedError)
        #expect(wasRunning)
        #expect(failed(r) == ["a": .stopped, "b": .stopped])
        #expect(s.inflightCount == 0)
        #expect(s.beginPublish(qos: 1) == .stopped)
        let restarted = s.start()
        #expect(!restarted)
    }

    @Test("link: connect returns subscriptions to renew; failures count until a connect")
    func link() {
        var s = State(maxInflight: 1)
        let up1 = s.remember(MQTTSubscription(filter: "a/#", qos: 1))
        let up2 = s.remember(MQTTSubscription(filter: "a/#", qos: 0))   // same filter: replaced
        #expect(!up1 && !up2)
        let error = MQTTError(kind: .io, message: "refused")
        #expect(s.attemptFailed(error) == 0)
        #expect(s.attemptFailed(error) == 1)
        #expect(s.lastError == error)
        #expect(s.connected() == [MQTTSubscription(filter: "a/#", qos: 0)])
        #expect(s.connected() == nil)
        #expect(s.failedAttempts == 0)
        #expect(s.lastError == nil)
        let wasUp = s.linkDown(), wasUpAgain = s.linkDown()
        #expect(wasUp)
        #expect(!wasUpAgain)
    }

    @Test("reconnect delay doubles from the base up to the cap, scaled by jitter")
    func backoff() {
        let base = Duration.milliseconds(500), cap = Duration.seconds(30)
        #expect(mqttReconnectDelay(attempt: 0, base: base, cap: cap, jitter: 1) == .milliseconds(500))
        #expect(mqttReconnectDelay(attempt: 1, base: base, cap: cap, jitter: 1) == .seconds(1))
        #expect(mqttReconnectDelay(attempt: 5, base: base, cap: cap, jitter: 1) == .seconds(16))
        #expect(mqttReconnectDelay(attempt: 6, base: base, cap: cap, jitter: 1) == .seconds(30))
        #expect(mqttReconnectDelay(attempt: 10_000, base: base, cap: cap, jitter: 1) == .seconds(30))
        #expect(mqttReconnectDelay(attempt: 1, base: base, cap: cap, jitter: 0.75) == .milliseconds(750))
    }
}
