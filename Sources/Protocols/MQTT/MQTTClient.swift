import EdgeRuntime
import FoundationEssentials
public import Logging
#if canImport(Glibc)
import Glibc
#endif

/// An MQTT 3.1.1 client over libmosquitto for the uplink: keeps one link to one broker up
/// (reconnecting forever with capped exponential backoff, also when the first connect
/// fails), re-subscribes on every connect, and bounds the messages in flight.
///
/// Thread-safe; all methods may be called from any thread or task. Handlers run on the
/// client's network thread ("mqtt-net"): keep them short and non-blocking; they may call
/// `publish`, `subscribe` and `stop` (which then does not wait). Releasing the client stops it.
///
/// Delivery: QoS 1/2 messages accepted by `publish` are kept by libmosquitto until
/// acknowledged and resent after a reconnect (same message id, DUP flag); the client never
/// publishes a message twice itself. At most `maxInflight` QoS 1/2 messages are
/// unacknowledged at any time (`inflightCount`); `publish` throws `.windowFull` beyond
/// that, `publishAndWait` waits for a slot.
public final class MQTTClient: Sendable {
    private let core: MQTTCore

    /// Validates the configuration (URL, TLS files, bounds) and prepares libmosquitto.
    /// Does not connect; call `start()`.
    public init(configuration: MQTTConfiguration, logger: Logger) throws(MQTTError) {
        core = try MQTTCore(configuration: configuration, logger: logger)
    }

    deinit { core.stop() }

    /// The configuration the client was made with.
    public var configuration: MQTTConfiguration { core.configuration }

    /// Starts the network thread, which connects and keeps reconnecting until `stop()`.
    /// Calling it again, or after `stop()`, does nothing.
    public func start() { core.start() }

    /// Sends DISCONNECT (so the broker does NOT publish the will), stops the network thread
    /// and fails every waiting `publishAndWait` with `.stopped`. Final: a stopped client
    /// cannot be started again. Blocks until the network thread has exited: normally a few
    /// milliseconds, about 2 s at most when the broker does not take the DISCONNECT.
    public func stop() { core.stop() }

    /// Whether the link is up (CONNACK accepted and not lost since).
    public var isConnected: Bool { core.isConnected }

    /// The broker URL the client is connected to, or trying next (one of `configuration.brokers`).
    public var currentBroker: String { core.currentBroker }

    /// The last connection failure (cleared by a successful connect), e.g. `.tls` when the
    /// broker's certificate is not trusted, `.io` when the broker is unreachable.
    public var lastError: MQTTError? { core.lastError }

    /// QoS 1/2 messages accepted and not yet acknowledged; never more than `maxInflight`.
    public var inflightCount: Int { core.inflightCount }

    /// Replaces the will for the next CONNECT (the current link keeps the one it connected
    /// with). Meant for a connection-change handler (the network thread, before it reconnects),
    /// e.g. Sparkplug's NDEATH whose bdSeq changes per connect. Throws `.invalidArgument` for
    /// a bad topic or QoS.
    public func setWill(_ will: MQTTMessage) throws(MQTTError) { try core.setWill(will) }

    /// Called with `true` on every connect and `false` when an established link is lost or stopped.
    public func onConnectionChange(_ handler: @escaping @Sendable (Bool) -> Void) { core.onConnectionChange(handler) }

    /// Called for every message received on a subscribed topic filter.
    public func onMessage(_ handler: @escaping @Sendable (MQTTMessage) -> Void) { core.onMessage(handler) }

    /// Called with a message id when that message completed: PUBACK for QoS 1 (PUBCOMP for
    /// QoS 2), or written to the socket for QoS 0.
    public func onPublished(_ handler: @escaping @Sendable (Int32) -> Void) { core.onPublished(handler) }

    /// Subscribes `topicFilter` now if connected, and again on every (re)connect.
    /// Throws `.invalidArgument` for a malformed filter or QoS outside 0...2.
    public func subscribe(_ topicFilter: String, qos: Int) throws(MQTTError) { try core.subscribe(topicFilter, qos: qos) }

    /// Hands `message` to libmosquitto and returns its message id (see `onPublished`).
    ///
    /// QoS 1/2 while disconnected: libmosquitto answers MOSQ_ERR_NO_CONN but has queued the
    /// message and sends it after the next connect, so this returns the id as queued (do not
    /// publish it again). QoS 0 while disconnected throws `.notConnected`.
    /// Throws `.windowFull` when `maxInflight` QoS 1/2 messages are unacknowledged,
    /// `.invalidArgument` for a bad topic/QoS/payload, `.stopped` after `stop()`.
    @discardableResult
    public func publish(_ message: MQTTMessage) throws(MQTTError) -> Int32 { try core.publish(message) }

    /// Publishes `message` and returns when it completed: on PUBACK for QoS 1 (PUBCOMP for
    /// QoS 2), when written for QoS 0. Waits for a window slot first if the window is full.
    /// Survives reconnects (libmosquitto resends). Throws `.stopped` if the client stops first,
    /// `.cancelled` if the task is cancelled (the message may still be delivered).
    public func publishAndWait(_ message: MQTTMessage) async throws(MQTTError) { try await core.publishAndWait(message) }
}

/// The client's engine: state behind one lock, the network thread, libmosquitto events.
final class MQTTCore: MosquittoEventHandler, Sendable {
    typealias Waiter = CheckedContinuation<Result<Void, MQTTError>, Never>

    /// Everything mutable, behind `shared`'s lock.
    struct Shared {
        var machine: MQTTClientState<Waiter>
        var connectionHandlers: [@Sendable (Bool) -> Void] = []
        var messageHandlers: [@Sendable (MQTTMessage) -> Void] = []
        var publishedHandlers: [@Sendable (Int32) -> Void] = []
        /// Last error-level line libmosquitto logged (e.g. the OpenSSL reason), for errors.
        var lastLibraryError: String?
        /// Refusal code of the last CONNACK, if it refused.
        var lastRefusal: (code: Int32, text: String)?
        var networkThread: pthread_t?
        /// A CONNACK was accepted on the current socket (for wording failures).
        var hadLink = false
        /// Index into `endpoints` of the broker in use (or tried next).
        var endpointIndex = 0
    }

    let configuration: MQTTConfiguration
    /// `configuration.brokers`, parsed; the client fails over between them in order.
    private let endpoints: [MQTTEndpoint]
    private let logger: Logger
    private let session: MosquittoSession
    private let shared: Locked<Shared>
    /// Signalled by `stop()`; the network thread's backoff sleeps wait on it (monotonic).
    private let stopSignal = Event()
    /// Signalled by the network thread when it exits.
    private let exited = Event()

    /// Poll interval of the network loop when idle; publishes/disconnect wake it earlier.
    private static let loopTimeoutMilliseconds = 1000
    /// How long `stop()` lets the network thread flush DISCONNECT.
    private static let disconnectFlushTimeout: Duration = .seconds(2)

    init(configuration: MQTTConfiguration, logger: Logger) throws(MQTTError) {
        endpoints = try configuration.validatedEndpoints()
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "broker"] = "\(configuration.broker)"
        logger[metadataKey: "client"] = "\(configuration.clientID)"
        self.logger = logger
        shared = Locked(Shared(machine: MQTTClientState(maxInflight: configuration.maxInflight)))
        session = try MosquittoSession(clientID: configuration.clientID, cleanSession: configuration.cleanSession, broker: configuration.broker)
        try check(session.configure(maxInflight: configuration.maxInflight), "setting protocol 3.1.1 and max in-flight")
        if let will = configuration.will {
            try check(session.configureWill(will), "setting the will", topic: will.topic)
        }
        if let tls = configuration.tls {
            let status = session.configureTLS(ca: tls.ca, cert: tls.cert, key: tls.key)
            if !status.isSuccess {
                throw MQTTError(kind: .invalidConfiguration, code: status.code,
                                message: "TLS files rejected by libmosquitto (ca \(tls.ca), cert \(tls.cert), key \(tls.key)): \(status.text)",
                                broker: configuration.broker, clientID: configuration.clientID)
            }
        }
        session.attach(self)
    }

    private func check(_ status: MosquittoStatus, _ what: String, topic: String? = nil) throws(MQTTError) {
        guard status.isSuccess else {
            throw MQTTError(kind: .invalidConfiguration, code: status.code, message: "\(what): \(status.text)",
                            broker: configuration.broker, clientID: configuration.clientID, topic: topic)
        }
    }

    private func error(_ status: MosquittoStatus, _ what: String, topic: String? = nil) -> MQTTError {
        MQTTError(kind: status.kind, code: status.code, message: "\(what): \(status.text)",
                  broker: configuration.broker, clientID: configuration.clientID, topic: topic)
    }

    // MARK: State queries

    var isConnected: Bool { shared.withLock { $0.machine.isConnected } }
    var currentBroker: String { configuration.brokers[shared.withLock { $0.endpointIndex }] }
    private var endpoint: MQTTEndpoint { endpoints[shared.withLock { $0.endpointIndex }] }

    /// After a failed attempt or a lost link: the next broker of the list (round robin).
    /// Returns whether it changed (then the next attempt must connect afresh to its host).
    private func failOver() -> Bool {
        guard endpoints.count > 1 else { return false }
        let (from, to) = shared.withLock { state -> (Int, Int) in
            let from = state.endpointIndex
            state.endpointIndex = (from + 1) % endpoints.count
            return (from, state.endpointIndex)
        }
        logger.notice("MQTT failing over to the next broker", metadata: ["from": "\(configuration.brokers[from])", "to": "\(configuration.brokers[to])"])
        return true
    }
    var lastError: MQTTError? { shared.withLock { $0.machine.lastError } }
    var inflightCount: Int { shared.withLock { $0.machine.inflightCount } }

    func onConnectionChange(_ handler: @escaping @Sendable (Bool) -> Void) { shared.withLock { $0.connectionHandlers.append(handler) } }
    func onMessage(_ handler: @escaping @Sendable (MQTTMessage) -> Void) { shared.withLock { $0.messageHandlers.append(handler) } }
    func onPublished(_ handler: @escaping @Sendable (Int32) -> Void) { shared.withLock { $0.publishedHandlers.append(handler) } }

    // MARK: Lifecycle

    func start() {
        guard shared.withLock({ $0.machine.start() }) else { return }
        OSThread.detached(name: "mqtt-net") { [self] in
            shared.withLock { $0.networkThread = pthread_self() }
            runNetwork()
            exited.set()
        }
        logger.info("MQTT client started", metadata: ["maxInflight": "\(configuration.maxInflight)"])
    }

    func stop() {
        let (stopped, onNetworkThread) = shared.withLock { state -> ((resume: [MQTTClientState<Waiter>.Resumption], wasRunning: Bool), Bool) in
            let onThread = state.networkThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
            return (state.machine.stop(error: stoppedError()), onThread)
        }
        resume(stopped.resume)
        guard stopped.wasRunning else { return }
        _ = session.disconnect()   // wakes the loop at once; the network thread flushes it
        stopSignal.set()
        if onNetworkThread {
            // Called from a handler: the thread exits once the handler returns; joining would deadlock.
            logger.debug("MQTT stop requested from a handler; the network thread exits after it")
            return
        }
        if !exited.wait(until: .now() + .seconds(10)) {
            logger.error("MQTT network thread did not exit within 10 s")
        }
        let wasUp = shared.withLock { $0.machine.linkDown() }
        if wasUp { notifyConnection(false) }
        logger.info("MQTT client stopped")
    }

    private func stoppedError() -> MQTTError {
        MQTTError(kind: .stopped, message: "client stopped before the message completed",
                  broker: configuration.broker, clientID: configuration.clientID)
    }

    private var isStopping: Bool { shared.withLock { $0.machine.lifecycle == .stopped } }

    /// The network thread: connect, loop, and on any failure back off and reconnect,
    /// until `stop()`. Then DISCONNECT is flushed (bounded) so the will is not published.
    private func runNetwork() {
        var hostGiven = false
        var linkOpen = false
        let keepAlive = Int(configuration.keepAlive.components.seconds)
        while !isStopping {
            if !linkOpen {
                let target = endpoint
                let status = hostGiven
                    ? session.reconnectAsync()
                    : session.connectAsync(host: target.host, port: target.port, keepAliveSeconds: keepAlive)
                if !status.isInvalidArgument { hostGiven = true }
                guard status.isSuccess else {
                    backOff(after: status, what: "connecting to \(target.host):\(target.port)")
                    if failOver() { hostGiven = false }
                    continue
                }
                linkOpen = true
            }
            let status = session.loop(timeoutMilliseconds: Self.loopTimeoutMilliseconds)
            if !status.isSuccess {
                if isStopping { linkOpen = false; break }
                linkOpen = false
                let wasUp = linkLost()
                let target = endpoint
                backOff(after: status, what: wasUp ? "link to \(target.host):\(target.port) lost"
                                                   : "connecting to \(target.host):\(target.port)")
                if failOver() { hostGiven = false }
            }
        }
        if linkOpen {
            _ = session.disconnect()
            let clock = ContinuousClock()
            let deadline = clock.now + Self.disconnectFlushTimeout
            while clock.now < deadline && session.loop(timeoutMilliseconds: 100).isSuccess {}
        }
    }

    /// Records a failed attempt and sleeps the capped exponential backoff (wakes on stop).
    private func backOff(after status: MosquittoStatus, what: String) {
        let (attempt, failure) = shared.withLock { state -> (Int, MQTTError) in
            var failure = error(status, what)
            if status.isConnectionRefused, let refusal = state.lastRefusal {
                failure.kind = .connectionRefused
                failure.code = refusal.code
                failure.message = "broker refused the connection: \(refusal.text)"
            }
            if let detail = state.lastLibraryError {
                if failure.kind == .unknown || failure.kind == .io, Self.mentions(detail, "SSL") || Self.mentions(detail, "certificate") {
                    failure.kind = .tls
                }
                failure.message += " (\(detail))"
            }
            state.lastLibraryError = nil
            state.lastRefusal = nil
            return (state.machine.attemptFailed(failure), failure)
        }
        // One backoff step per full round through the broker list: the next broker is tried soon.
        let jitter = configuration.reconnectJitter
        let delay = mqttReconnectDelay(attempt: attempt / endpoints.count, base: configuration.reconnectDelay,
                                       cap: configuration.reconnectMaxDelay, jitter: 1 - jitter * Double.random(in: 0...1))
        let metadata: Logger.Metadata = ["attempt": "\(attempt + 1)", "retryIn": "\(delay)", "error": "\(failure)"]
        if attempt == 0 {
            logger.warning("MQTT connection failed", metadata: metadata)
        } else {
            logger.info("MQTT connection still failing", metadata: metadata)
        }
        stopSignal.wait(until: .now() + delay)   // stays set once the thread is stopping
    }

    /// The loop failed: the link is down. Returns whether it had been up (CONNACK seen).
    /// (Usually the disconnect callback has already noted it; this covers failures without one.)
    private func linkLost() -> Bool {
        let (wasUp, notify) = shared.withLock { state -> (Bool, Bool) in
            let notify = state.machine.linkDown()
            defer { state.hadLink = false }
            return (notify || state.hadLink, notify)
        }
        if notify { notifyConnection(false) }
        return wasUp
    }

    private func notifyConnection(_ up: Bool) {
        let handlers = shared.withLock { $0.connectionHandlers }
        for handler in handlers { handler(up) }
    }

    private func resume(_ resumptions: [MQTTClientState<Waiter>.Resumption]) {
        for r in resumptions { r.waiter.resume(returning: r.result) }
    }

    // MARK: libmosquitto events (network thread)

    func mosquittoConnected(returnCode: Int32, description: String) {
        guard returnCode == 0 else {
            shared.withLock { $0.lastRefusal = (returnCode, description) }
            logger.error("MQTT broker refused the connection", metadata: ["code": "\(returnCode)", "reason": "\(description)"])
            return
        }
        guard let subscriptions = shared.withLock({ state -> [MQTTSubscription]? in
            state.hadLink = true
            return state.machine.connected()
        }) else { return }
        for s in subscriptions {
            let status = session.subscribe(s.filter, qos: s.qos)
            if !status.isSuccess {
                logger.error("MQTT re-subscribe failed", metadata: ["topic": "\(s.filter)", "error": "\(status.text)"])
            }
        }
        logger.info("MQTT connected", metadata: ["subscriptions": "\(subscriptions.count)"])
        notifyConnection(true)
    }

    func mosquittoDisconnected(reasonCode: Int32) {
        let wasUp = shared.withLock { $0.machine.linkDown() }
        if wasUp {
            if reasonCode != 0 { logger.warning("MQTT link lost", metadata: ["reason": "\(reasonCode)"]) }
            notifyConnection(false)
        }
    }

    func mosquittoPublished(mid: Int32) {
        let (resumptions, handlers) = shared.withLock { ($0.machine.completed(mid: mid), $0.publishedHandlers) }
        resume(resumptions)
        for handler in handlers { handler(mid) }
    }

    func mosquittoMessage(_ message: MQTTMessage) {
        let handlers = shared.withLock { $0.messageHandlers }
        for handler in handlers { handler(message) }
    }

    func mosquittoLog(level: MosquittoLogLevel, text: String) {
        switch level {
        case .error:
            shared.withLock { $0.lastLibraryError = text }
            logger.debug("libmosquitto: \(text)")
        case .warning: logger.debug("libmosquitto warning: \(text)")
        case .info, .debug: logger.trace("libmosquitto: \(text)")
        }
    }

    // MARK: Subscribe and publish

    func setWill(_ will: MQTTMessage) throws(MQTTError) {
        try validate(will)
        let status = session.configureWill(will)
        guard status.isSuccess else { throw error(status, "setting the will", topic: will.topic) }
    }

    func subscribe(_ filter: String, qos: Int) throws(MQTTError) {
        guard (0...2).contains(qos), MosquittoSession.isValidTopicFilter(filter) else {
            throw MQTTError(kind: .invalidArgument, message: "invalid topic filter or QoS \(qos)",
                            broker: configuration.broker, clientID: configuration.clientID, topic: filter)
        }
        let connected = shared.withLock { $0.machine.remember(MQTTSubscription(filter: filter, qos: qos)) }
        guard connected else { return }   // sent on connect
        let status = session.subscribe(filter, qos: qos)
        if !status.isSuccess && !status.isNoConnection {
            throw error(status, "subscribe", topic: filter)
        }
    }

    private func validate(_ message: MQTTMessage) throws(MQTTError) {
        guard (0...2).contains(message.qos) else {
            throw MQTTError(kind: .invalidArgument, message: "QoS must be 0, 1 or 2 (got \(message.qos))",
                            broker: configuration.broker, clientID: configuration.clientID, topic: message.topic)
        }
        guard MosquittoSession.isValidTopicName(message.topic) else {
            throw MQTTError(kind: .invalidArgument, message: "invalid topic name (empty, wildcard or too long)",
                            broker: configuration.broker, clientID: configuration.clientID, topic: message.topic)
        }
        guard message.payload.count <= 268_435_455 else {
            throw MQTTError(kind: .invalidArgument, message: "payload of \(message.payload.count) bytes exceeds MQTT's 256 MiB",
                            broker: configuration.broker, clientID: configuration.clientID, topic: message.topic)
        }
    }

    /// mosquitto_publish, and whether libmosquitto kept the message (NO_CONN keeps QoS > 0).
    private func handOver(_ message: MQTTMessage) -> (accepted: Bool, mid: Int32, status: MosquittoStatus) {
        let (status, mid) = session.publish(message)
        let accepted = status.isSuccess || (status.isNoConnection && message.qos > 0)
        if accepted && status.isNoConnection {
            logger.debug("MQTT message queued while disconnected", metadata: ["topic": "\(message.topic)", "mid": "\(mid)"])
        }
        return (accepted, mid, status)
    }

    func publish(_ message: MQTTMessage) throws(MQTTError) -> Int32 {
        try validate(message)
        switch shared.withLock({ $0.machine.beginPublish(qos: message.qos) }) {
        case .granted: break
        case .stopped: throw stoppedError()
        default:
            throw MQTTError(kind: .windowFull, message: "\(configuration.maxInflight) messages already in flight",
                            broker: configuration.broker, clientID: configuration.clientID, topic: message.topic)
        }
        let (accepted, mid, status) = handOver(message)
        resume(shared.withLock { $0.machine.publishReturned(mid: accepted ? mid : nil, qos: message.qos, waiter: nil) })
        guard accepted else { throw error(status, "publish", topic: message.topic) }
        return mid
    }

    func publishAndWait(_ message: MQTTMessage) async throws(MQTTError) {
        try validate(message)
        let token = shared.withLock { $0.machine.makeToken() }
        defer { shared.withLock { $0.machine.forget(token: token) } }
        let outcome: Result<Void, MQTTError> = await withTaskCancellationHandler {
            let slot: Result<Void, MQTTError> = await withCheckedContinuation { (waiter: Waiter) in
                let decision = shared.withLock { $0.machine.requestSlot(qos: message.qos, token: token, waiter: waiter) }
                switch decision {
                case .granted: waiter.resume(returning: .success(()))
                case .queued: break
                case .stopped: waiter.resume(returning: .failure(stoppedError()))
                case .cancelled, .full: waiter.resume(returning: .failure(MQTTClientState<Waiter>.cancelledError))
                }
            }
            guard case .success = slot else { return slot }
            if Task.isCancelled {
                resume(shared.withLock { $0.machine.abandonPublish(qos: message.qos) })
                return .failure(MQTTClientState<Waiter>.cancelledError)
            }
            return await withCheckedContinuation { (waiter: Waiter) in
                let (accepted, mid, status) = handOver(message)
                let resumptions = shared.withLock {
                    $0.machine.publishReturned(mid: accepted ? mid : nil, qos: message.qos, waiter: accepted ? (token, waiter) : nil)
                }
                resume(resumptions)
                if !accepted { waiter.resume(returning: .failure(error(status, "publish", topic: message.topic))) }
            }
        } onCancel: {
            resume(shared.withLock { $0.machine.cancel(token: token) })
        }
        try outcome.get()
    }

    /// Whether libmosquitto's log line mentions `word` (a byte search: String's `contains(_:)`
    /// comes from _StringProcessing, which would bring its regex engine, 0.9 MB, into the binary).
    static func mentions(_ text: String, _ word: String) -> Bool {
        let t = Array(text.utf8), w = Array(word.utf8)
        guard !w.isEmpty, w.count <= t.count else { return w.isEmpty }
        return (0...(t.count - w.count)).contains { t[$0..<($0 + w.count)].elementsEqual(w) }
    }
}
