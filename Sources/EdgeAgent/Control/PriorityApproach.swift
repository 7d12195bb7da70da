public import EdgeRuntime

/// The bus-priority request of one junction approach. Pure logic: no I/O, no clock. The
/// agent only *requests*; the junction controller alone keeps signal safety.
///
/// Rules (DESIGN.md "Bus priority"):
/// - Check-in: a detector edge (an anonymous vehicle) or `request(vehicle:line:etaSeconds:)`
///   from the centre or a technician. A vehicle id already checked in is ignored (accepted).
/// - Check-out: a detector edge removes the oldest anonymous vehicle (an edge with none
///   checked in is counted in `spuriousCheckouts` and ignored); `cancel(vehicle:)` removes a
///   named one (accepted also when it is not checked in: cancelling is idempotent).
/// - The request output is on while at least one vehicle is checked in, and at most
///   `maxHold` from when it rose: then it drops, the vehicles then checked in are forgotten
///   (`priority.timeout`), so a lost check-out can never lock the junction.
/// - Rate limit: after the output drops it may rise again only `minInterval` later. A
///   check-in inside that interval is counted and its request DELAYED to the end of the
///   interval (if the vehicle is still checked in then); its event says `delayed`.
/// - Each vehicle gets one `priority.request` event when its request is on the output,
///   with its detect-to-output latency (`at` of the check-in is the detection instant: pass
///   the edge timestamp). `priority.granted` on the controller's acknowledge rising edge
///   after the request rose, with request-to-ack latency (once per request).
/// - Controller degraded (flashing or dark): alarm `controller_degraded` (major); the
///   output drops at once, checked-in vehicles are forgotten (`priority.checkout`, reason
///   `degraded`), detector check-ins are ignored (counted in `ignoredCheckins`) and centre
///   requests refused (`interlock`) until it recovers: a dark controller cannot serve a
///   request, and stale ones must not fire when it comes back.
/// - I/O offline (`ioOnline(false)`): centre requests are refused (`device_offline`);
///   the logic keeps running so the output is right when the I/O answers again.
///
/// At most `capacity` vehicles are checked in at once; more are refused or ignored.
/// `at` instants older than the last one seen are treated as the last one for timing.
/// `nextDeadline` is the max-hold end or the end of the rate limit a delayed vehicle waits for:
/// the control loop sleeps until it (`TicklessEquivalenceTests`).
public struct PriorityApproach: Sendable {
    /// Detector edges and the junction controller's inputs, as the runner sees them.
    public enum Input: Sendable, Equatable {
        /// Check-in detector edge (anonymous vehicle).
        case checkinEdge
        /// Check-out detector edge.
        case checkoutEdge
        /// The controller's "priority acknowledged" input for this approach.
        case acknowledged(Bool)
        /// The controller's "degraded (flashing or dark)" input.
        case degraded(Bool)
        /// The signal I/O answers (true) or not.
        case ioOnline(Bool)
    }

    /// What the runner writes to the signal I/O (coil or line of `approach`).
    public struct Outputs: Sendable, Equatable {
        /// The approach's request coil/line.
        public var request = false
        public init(request: Bool = false) { self.request = request }
    }

    /// Data of a `priority.request` event.
    public struct RequestInfo: Sendable, Equatable {
        /// Vehicle id; nil for an anonymous detector check-in.
        public var vehicle: String?
        public var line: String?
        public var etaSeconds: Int?
        /// Vehicles checked in when the request went out.
        public var vehicles: Int
        /// The check-in instant (the detector edge).
        public var detectedAt: MonotonicInstant
        /// Detection to output on.
        public var latency: Duration
        /// Held back by `minInterval`.
        public var delayed: Bool
    }

    /// Why a vehicle checked out (event data `reason`).
    public enum CheckoutReason: String, Sendable, Equatable {
        case detector, cancel, degraded
    }

    private struct Vehicle: Sendable {
        var id: String?
        var line: String?
        var eta: Int?
        var detectedAt: MonotonicInstant
        var reported = false
        var delayed = false
    }

    public static let capacity = 32

    public let name: String
    /// Approach number on the signal I/O (1-8).
    public let approach: Int
    public let maxHold: Duration
    public let minInterval: Duration

    public private(set) var outputs = Outputs()
    /// When the output rose (nil while off).
    public private(set) var requestSince: MonotonicInstant?
    /// When the output last dropped.
    public private(set) var lastDrop: MonotonicInstant?
    public private(set) var degraded = false
    public private(set) var ioOnline = true
    /// Detector check-ins ignored (controller degraded, or capacity reached).
    public private(set) var ignoredCheckins = 0
    /// Check-out edges with no anonymous vehicle checked in.
    public private(set) var spuriousCheckouts = 0

    private var vehicles: [Vehicle] = []
    private var ackInput = false
    private var granted = false
    private var clock: MonotonicInstant?
    private var queue = EventQueue()

    public init(name: String, approach: Int, maxHold: Duration, minInterval: Duration) {
        self.name = name
        self.approach = approach
        self.maxHold = maxHold
        self.minInterval = minInterval
        vehicles.reserveCapacity(Self.capacity)
    }

    /// An approach built from its `priority:` config entry.
    public init(config: ApproachConfig) {
        self.init(name: config.name, approach: config.approach, maxHold: config.maxHold, minInterval: config.minInterval)
    }

    /// Vehicles checked in now.
    public var checkedIn: Int { vehicles.count }

    /// Ids of the named vehicles checked in, oldest first (allocates; for status output).
    public var namedVehicles: [String] { vehicles.compactMap(\.id) }

    /// When `tick` must run next at the latest: max-hold end, or end of the rate limit.
    public var nextDeadline: MonotonicInstant? {
        if let since = requestSince { return since + maxHold }
        if !vehicles.isEmpty, !degraded, let drop = lastDrop { return drop + minInterval }
        return nil
    }

    public mutating func handle(_ input: Input, at: MonotonicInstant) {
        let now = advance(to: at)
        switch input {
        case .checkinEdge:
            if degraded || vehicles.count >= Self.capacity {
                ignoredCheckins += 1
            } else {
                vehicles.append(Vehicle(id: nil, line: nil, eta: nil, detectedAt: min(at, now)))
            }
        case .checkoutEdge:
            if let i = vehicles.firstIndex(where: { $0.id == nil }) {
                vehicles.remove(at: i)
                queue.append(ControlEvent(at: now, source: name, kind: .priorityCheckout(vehicle: nil, remaining: vehicles.count, reason: .detector)))
            } else {
                spuriousCheckouts += 1
            }
        case .acknowledged(let on):
            let rising = on && !ackInput
            ackInput = on
            if rising, let since = requestSince, !granted {
                granted = true
                queue.append(ControlEvent(at: now, source: name, kind: .priorityGranted(latency: now - since)))
            }
        case .degraded(let on):
            setDegraded(on, now: now)
        case .ioOnline(let on):
            ioOnline = on
        }
        update(now: now)
    }

    public mutating func tick(at: MonotonicInstant) {
        update(now: advance(to: at))
    }

    /// A centre/technician check-in of `vehicle`. Refused while the I/O is offline
    /// (`device_offline`), the controller is degraded (`interlock`), for an empty id, a
    /// negative ETA or a full approach (`out_of_range`). A duplicate id is accepted and ignored.
    @discardableResult
    public mutating func request(vehicle: String, line: String?, etaSeconds: Int?, at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        update(now: now)
        if !ioOnline { return .refused(CommandError(.deviceOffline, "approach \(name): signal I/O not reachable")) }
        if degraded { return .refused(CommandError(.interlock, "approach \(name): junction controller degraded (flashing or dark)")) }
        if vehicle.isEmpty { return .refused(CommandError(.outOfRange, "approach \(name): empty vehicle id")) }
        if let eta = etaSeconds, eta < 0 { return .refused(CommandError(.outOfRange, "approach \(name): eta_s \(eta) is negative")) }
        if vehicles.contains(where: { $0.id == vehicle }) { return .accepted }
        if vehicles.count >= Self.capacity {
            return .refused(CommandError(.outOfRange, "approach \(name): \(Self.capacity) vehicles already checked in"))
        }
        vehicles.append(Vehicle(id: vehicle, line: line, eta: etaSeconds, detectedAt: min(at, now)))
        update(now: now)
        return .accepted
    }

    /// Checks out a named vehicle (idempotent).
    @discardableResult
    public mutating func cancel(vehicle: String, at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        update(now: now)
        if let i = vehicles.firstIndex(where: { $0.id == vehicle }) {
            vehicles.remove(at: i)
            queue.append(ControlEvent(at: now, source: name, kind: .priorityCheckout(vehicle: vehicle, remaining: vehicles.count, reason: .cancel)))
            update(now: now)
        }
        return .accepted
    }

    /// Takes the queued events (allocates only when there are some).
    public mutating func drainEvents() -> [ControlEvent] { queue.drain() }
    public mutating func drainEvents(into buffer: inout [ControlEvent]) { queue.drain(into: &buffer) }

    // MARK: - internals

    private mutating func advance(to at: MonotonicInstant) -> MonotonicInstant {
        let now = clock.map { max($0, at) } ?? at
        clock = now
        return now
    }

    private mutating func setDegraded(_ on: Bool, now: MonotonicInstant) {
        guard on != degraded else { return }
        degraded = on
        queue.append(ControlEvent(at: now, source: name, kind: .alarm(.init(
            code: .controllerDegraded, active: on, severity: .major,
            message: on ? "approach \(name): junction controller degraded (flashing or dark), priority requests suspended"
                : "approach \(name): junction controller back to normal operation"))))
        guard on else { return }
        while let v = vehicles.first {
            vehicles.removeFirst()
            queue.append(ControlEvent(at: now, source: name, kind: .priorityCheckout(vehicle: v.id, remaining: vehicles.count, reason: .degraded)))
        }
    }

    private mutating func drop(now: MonotonicInstant) {
        outputs.request = false
        requestSince = nil
        lastDrop = now
        granted = false
    }

    private mutating func update(now: MonotonicInstant) {
        if let since = requestSince, now - since >= maxHold {
            let dropped = vehicles.count
            vehicles.removeAll(keepingCapacity: true)
            drop(now: now)
            queue.append(ControlEvent(at: now, source: name, kind: .priorityTimeout(dropped: dropped, heldFor: now - since)))
        }
        if outputs.request, vehicles.isEmpty || degraded {
            drop(now: now)
        }
        if !outputs.request, !vehicles.isEmpty, !degraded {
            if let drop = lastDrop, now - drop < minInterval {
                for i in vehicles.indices where !vehicles[i].delayed { vehicles[i].delayed = true }
                return
            }
            outputs.request = true
            requestSince = now
            granted = false
        }
        guard outputs.request else { return }
        for i in vehicles.indices where !vehicles[i].reported {
            vehicles[i].reported = true
            let v = vehicles[i]
            queue.append(ControlEvent(at: now, source: name, kind: .priorityRequest(RequestInfo(
                vehicle: v.id, line: v.line, etaSeconds: v.eta, vehicles: vehicles.count,
                detectedAt: v.detectedAt, latency: now - v.detectedAt, delayed: v.delayed))))
        }
    }
}
