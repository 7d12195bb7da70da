import EdgeAgent
import Testing

@Suite struct PriorityTests {
    typealias Clock = ControlTest.Clock

    /// max_hold 60 s, min_interval 20 s.
    static func make() -> PriorityApproach {
        PriorityApproach(config: ApproachConfig(name: "north", device: "junction", approach: 1, checkin: "bus-in-n", checkout: "bus-out-n", maxHold: .seconds(60), minInterval: .seconds(20)))
    }

    static func requests(_ events: [ControlEvent]) -> [PriorityApproach.RequestInfo] {
        events.compactMap { if case .priorityRequest(let i) = $0.kind { i } else { nil } }
    }

    @Test func heldFromCheckInUntilCheckOut() {
        let clock = Clock()
        var p = Self.make()
        #expect(!p.outputs.request)
        p.handle(.checkinEdge, at: clock.now)
        #expect(p.outputs.request)
        #expect(p.requestSince == clock.now)
        #expect(p.nextDeadline == clock.plus(60))
        p.tick(at: clock.plus(30))
        #expect(p.outputs.request)
        p.handle(.checkoutEdge, at: clock.plus(31))
        #expect(!p.outputs.request)
        #expect(p.checkedIn == 0)
        let events = p.drainEvents()
        #expect(ControlTest.types(events) == ["priority.request", "priority.checkout"])
        let info = Self.requests(events).first
        #expect(info?.vehicle == nil && info?.latency == .zero && info?.delayed == false && info?.vehicles == 1)
        #expect(events.last?.kind == .priorityCheckout(vehicle: nil, remaining: 0, reason: .detector))
    }

    @Test func maxHoldTimesOutAndDropsTheVehicles() {
        let clock = Clock()
        var p = Self.make()
        p.handle(.checkinEdge, at: clock.now)
        p.request(vehicle: "bus-1402", line: "L5", etaSeconds: 12, at: clock.plus(50))
        p.tick(at: clock.plus(59.999))
        #expect(p.outputs.request)
        p.tick(at: clock.plus(60))
        #expect(!p.outputs.request, "a lost check-out cannot lock the junction")
        #expect(p.checkedIn == 0, "timed-out vehicles are dropped")
        #expect(p.drainEvents().last?.kind == .priorityTimeout(dropped: 2, heldFor: .seconds(60)))
        // The stale check-outs that arrive later are harmless.
        p.handle(.checkoutEdge, at: clock.plus(70))
        #expect(p.spuriousCheckouts == 1)
        #expect(!p.outputs.request)
    }

    @Test func multipleBusesDropOnlyWhenTheLastChecksOut() {
        let clock = Clock()
        var p = Self.make()
        p.handle(.checkinEdge, at: clock.now)
        #expect(p.request(vehicle: "bus-1", line: "L1", etaSeconds: nil, at: clock.plus(1)) == .accepted)
        p.handle(.checkinEdge, at: clock.plus(2))
        #expect(p.checkedIn == 3)
        p.handle(.checkoutEdge, at: clock.plus(10))
        #expect(p.cancel(vehicle: "bus-1", at: clock.plus(11)) == .accepted)
        #expect(p.outputs.request, "one anonymous vehicle still checked in")
        p.handle(.checkoutEdge, at: clock.plus(12))
        #expect(!p.outputs.request)
        let reqs = Self.requests(p.drainEvents())
        #expect(reqs.map(\.vehicles) == [1, 2, 3])
        #expect(reqs.map(\.vehicle) == [nil, "bus-1", nil])
    }

    @Test func checkoutEdgeRemovesTheOldestAnonymousNotANamedBus() {
        let clock = Clock()
        var p = Self.make()
        p.request(vehicle: "bus-7", line: nil, etaSeconds: nil, at: clock.now)
        p.handle(.checkoutEdge, at: clock.plus(1))
        #expect(p.checkedIn == 1 && p.outputs.request)
        #expect(p.spuriousCheckouts == 1)
        #expect(p.namedVehicles == ["bus-7"])
    }

    @Test func duplicatesOfTheSameVehicleAreIgnored() {
        let clock = Clock()
        var p = Self.make()
        #expect(p.request(vehicle: "bus-9", line: "L2", etaSeconds: 10, at: clock.now) == .accepted)
        #expect(p.request(vehicle: "bus-9", line: "L2", etaSeconds: 8, at: clock.plus(2)) == .accepted)
        #expect(p.checkedIn == 1)
        #expect(Self.requests(p.drainEvents()).count == 1)
        p.cancel(vehicle: "bus-9", at: clock.plus(5))
        #expect(!p.outputs.request)
        #expect(p.cancel(vehicle: "bus-9", at: clock.plus(6)) == .accepted, "idempotent")
    }

    @Test func minIntervalDelaysAReRequest() {
        let clock = Clock()
        var p = Self.make()
        p.handle(.checkinEdge, at: clock.now)
        p.handle(.checkoutEdge, at: clock.plus(5))
        #expect(p.lastDrop == clock.plus(5))
        _ = p.drainEvents()
        // A bus 10 s later: counted, but the output waits until 5 + 20 = 25 s.
        p.handle(.checkinEdge, at: clock.plus(15))
        #expect(!p.outputs.request)
        #expect(p.checkedIn == 1)
        #expect(p.nextDeadline == clock.plus(25))
        #expect(p.drainEvents().isEmpty)
        p.tick(at: clock.plus(24.999))
        #expect(!p.outputs.request)
        p.tick(at: clock.plus(25))
        #expect(p.outputs.request)
        let info = Self.requests(p.drainEvents()).first
        #expect(info?.delayed == true)
        #expect(info?.latency == .seconds(10), "detect-to-output includes the rate-limit wait")
        // A vehicle that checks out inside the interval never raises the output.
        p.handle(.checkoutEdge, at: clock.plus(30))
        p.handle(.checkinEdge, at: clock.plus(35))
        p.handle(.checkoutEdge, at: clock.plus(40))
        p.tick(at: clock.plus(50))
        #expect(!p.outputs.request)
        #expect(p.nextDeadline == nil)
    }

    @Test func acknowledgeGivesGrantedWithLatency() {
        let clock = Clock()
        var p = Self.make()
        p.handle(.acknowledged(true), at: clock.now)  // stale ack before any request: ignored
        p.handle(.acknowledged(false), at: clock.plus(0.1))
        p.handle(.checkinEdge, at: clock.plus(1))
        p.handle(.acknowledged(true), at: clock.plus(1.35))
        p.handle(.acknowledged(false), at: clock.plus(2))
        p.handle(.acknowledged(true), at: clock.plus(3))  // once per request
        let granted = p.drainEvents().filter { $0.type == "priority.granted" }
        #expect(granted.map(\.kind) == [.priorityGranted(latency: .milliseconds(350))])
        #expect(granted.first?.data["latency_ms"] == .double(350))
    }

    @Test func degradedControllerSuspendsRequests() {
        let clock = Clock()
        var p = Self.make()
        p.request(vehicle: "bus-3", line: "L3", etaSeconds: 20, at: clock.now)
        #expect(p.outputs.request)
        p.handle(.degraded(true), at: clock.plus(1))
        #expect(!p.outputs.request)
        #expect(p.checkedIn == 0)
        let events = p.drainEvents()
        #expect(ControlTest.alarms(events).map { "\($0.0)=\($0.1)" } == ["controller_degraded=true"])
        #expect(events.contains { $0.kind == .priorityCheckout(vehicle: "bus-3", remaining: 0, reason: .degraded) })
        p.handle(.checkinEdge, at: clock.plus(2))
        #expect(p.ignoredCheckins == 1 && !p.outputs.request)
        guard case .refused(let r) = p.request(vehicle: "bus-4", line: nil, etaSeconds: nil, at: clock.plus(3)) else {
            Issue.record("request accepted while degraded")
            return
        }
        #expect(r.code == .interlock && r.message.contains("degraded"))
        p.handle(.degraded(false), at: clock.plus(30))
        p.handle(.checkinEdge, at: clock.plus(31))
        #expect(p.outputs.request, "recovered; the drop at +1 s is more than min_interval ago")
    }

    @Test func refusals() {
        let clock = Clock()
        var p = Self.make()
        p.handle(.ioOnline(false), at: clock.now)
        if case .refused(let r) = p.request(vehicle: "bus-1", line: nil, etaSeconds: nil, at: clock.now) {
            #expect(r.code == .deviceOffline)
        } else { Issue.record("accepted while offline") }
        p.handle(.ioOnline(true), at: clock.now)
        if case .refused(let r) = p.request(vehicle: "bus-1", line: nil, etaSeconds: -5, at: clock.now) {
            #expect(r.code == .outOfRange)
        } else { Issue.record("negative eta accepted") }
        #expect(!p.outputs.request)
    }

    @Test func latencyFromTheEdgeTimestamp() {
        var clock = Clock()
        var p = Self.make()
        clock.advance(.seconds(1))
        p.tick(at: clock.now)
        // The runner handles an edge stamped 3 ms before the loop's last tick.
        p.handle(.checkinEdge, at: clock.plus(-0.003))
        let info = Self.requests(p.drainEvents()).first
        #expect(info?.detectedAt == clock.plus(-0.003))
        #expect(info?.latency == .milliseconds(3))
    }

    @Test func idleTicksMakeNoEvents() {
        let clock = Clock()
        var p = Self.make()
        p.request(vehicle: "bus-1", line: nil, etaSeconds: nil, at: clock.now)
        _ = p.drainEvents()
        var buffer: [ControlEvent] = []
        buffer.reserveCapacity(16)
        for i in 0..<5_000 {
            p.tick(at: clock.plus(Double(i) * 0.01))
            p.drainEvents(into: &buffer)
        }
        #expect(buffer.isEmpty)
    }
}
