// The only file that touches libmosquitto: every pointer, every C call and every
// MOSQ_ERR_* constant of the MQTT layer is here.
//
// Threading (libmosquitto 2.0 "threaded" mode, set with mosquitto_threaded_set): the
// network thread owned by MQTTCore calls connect/reconnect/loop; any thread may call
// publish/subscribe/disconnect, which queue packets and wake the loop through
// libmosquitto's internal socket pair. Callbacks run on the network thread, inside
// mosquitto_loop (or inside publish/subscribe when those are called from a callback).
import CMosquitto
import EdgeRuntime
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A libmosquitto return code with the errno read right after the call.
struct MosquittoStatus: Equatable {
    var code: Int32
    var errnoValue: Int32 = 0

    var isSuccess: Bool { code == Int32(MOSQ_ERR_SUCCESS.rawValue) }
    /// No connection: for a QoS > 0 publish this still means "queued, sent on reconnect".
    var isNoConnection: Bool { code == Int32(MOSQ_ERR_NO_CONN.rawValue) }
    var isConnectionRefused: Bool { code == Int32(MOSQ_ERR_CONN_REFUSED.rawValue) }
    /// MOSQ_ERR_INVAL: for connect_async, the host was not even stored.
    var isInvalidArgument: Bool { code == Int32(MOSQ_ERR_INVAL.rawValue) }

    /// libmosquitto's text, with the errno text for MOSQ_ERR_ERRNO.
    var text: String {
        if code == Int32(MOSQ_ERR_ERRNO.rawValue) {
            return "system error: \(String(cString: strerror(errnoValue))) (errno \(errnoValue))"
        }
        return String(cString: mosquitto_strerror(code))
    }

    /// The error kind this code calls for.
    var kind: MQTTError.Kind {
        switch code {
        case Int32(MOSQ_ERR_NO_CONN.rawValue): return .notConnected
        case Int32(MOSQ_ERR_CONN_REFUSED.rawValue), Int32(MOSQ_ERR_AUTH.rawValue): return .connectionRefused
        case Int32(MOSQ_ERR_TLS.rawValue), Int32(MOSQ_ERR_TLS_HANDSHAKE.rawValue), Int32(MOSQ_ERR_OCSP.rawValue): return .tls
        case Int32(MOSQ_ERR_PROTOCOL.rawValue), Int32(MOSQ_ERR_MALFORMED_PACKET.rawValue),
             Int32(MOSQ_ERR_MALFORMED_UTF8.rawValue), Int32(MOSQ_ERR_DUPLICATE_PROPERTY.rawValue):
            return .protocolError
        case Int32(MOSQ_ERR_ERRNO.rawValue), Int32(MOSQ_ERR_CONN_LOST.rawValue), Int32(MOSQ_ERR_KEEPALIVE.rawValue),
             Int32(MOSQ_ERR_EAI.rawValue), Int32(MOSQ_ERR_LOOKUP.rawValue), Int32(MOSQ_ERR_PROXY.rawValue),
             Int32(MOSQ_ERR_TIMEOUT.rawValue), Int32(MOSQ_ERR_NOMEM.rawValue):
            return .io
        case Int32(MOSQ_ERR_INVAL.rawValue), Int32(MOSQ_ERR_PAYLOAD_SIZE.rawValue), Int32(MOSQ_ERR_OVERSIZE_PACKET.rawValue),
             Int32(MOSQ_ERR_QOS_NOT_SUPPORTED.rawValue), Int32(MOSQ_ERR_RETAIN_NOT_SUPPORTED.rawValue):
            return .invalidArgument
        default: return .unknown
        }
    }
}

/// libmosquitto's log levels, as far as the client forwards them.
enum MosquittoLogLevel {
    case debug, info, warning, error
}

/// Receives libmosquitto's callbacks (on the network thread).
protocol MosquittoEventHandler: AnyObject, Sendable {
    /// CONNACK received; `returnCode` 0 is success, else the CONNACK refusal code.
    func mosquittoConnected(returnCode: Int32, description: String)
    /// The link closed; `reasonCode` 0 after our own DISCONNECT, else unexpected.
    func mosquittoDisconnected(reasonCode: Int32)
    /// Message `mid` completed: PUBACK (QoS 1), PUBCOMP (QoS 2) or written (QoS 0).
    func mosquittoPublished(mid: Int32)
    func mosquittoMessage(_ message: MQTTMessage)
    func mosquittoLog(level: MosquittoLogLevel, text: String)
}

/// Calls mosquitto_lib_init exactly once per process (Swift statics are initialised once,
/// thread-safely); mosquitto_lib_cleanup is never called, the process owns the library.
enum MosquittoLibrary {
    static let initResult: Int32 = mosquitto_lib_init()
}

/// One `struct mosquitto` client handle.
///
/// Invariants: `handle` is valid from init to deinit; the `configure*` calls happen before
/// the network thread starts; connect/reconnect/loop are called only by the network thread.
final class MosquittoSession: @unchecked Sendable {
    private let handle: OpaquePointer
    private let handlerLock = Lock()
    private weak var handler: (any MosquittoEventHandler)?

    /// mosquitto_new + threaded mode + callbacks; the handler is attached later.
    init(clientID: String, cleanSession: Bool, broker: String) throws(MQTTError) {
        let initResult = MosquittoLibrary.initResult
        guard initResult == Int32(MOSQ_ERR_SUCCESS.rawValue) else {
            throw MQTTError(kind: .unknown, code: initResult, message: "mosquitto_lib_init failed", broker: broker, clientID: clientID)
        }
        guard let handle = mosquitto_new(clientID, cleanSession, nil) else {
            let e = errno
            throw MQTTError(kind: .invalidConfiguration, code: Int32(MOSQ_ERR_ERRNO.rawValue),
                            message: "mosquitto_new failed: \(String(cString: strerror(e)))", broker: broker, clientID: clientID)
        }
        self.handle = handle
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_threaded_set(handle, true)
        mosquitto_connect_callback_set(handle) { _, userdata, rc in
            MosquittoSession.handler(of: userdata)?.mosquittoConnected(
                returnCode: rc, description: String(cString: mosquitto_connack_string(rc)))
        }
        mosquitto_disconnect_callback_set(handle) { _, userdata, rc in
            MosquittoSession.handler(of: userdata)?.mosquittoDisconnected(reasonCode: rc)
        }
        mosquitto_publish_callback_set(handle) { _, userdata, mid in
            MosquittoSession.handler(of: userdata)?.mosquittoPublished(mid: mid)
        }
        mosquitto_message_callback_set(handle) { _, userdata, message in
            guard let handler = MosquittoSession.handler(of: userdata), let message else { return }
            let m = message.pointee
            let payload: [UInt8]
            if let bytes = m.payload, m.payloadlen > 0 {
                payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(m.payloadlen)))
            } else {
                payload = []
            }
            let topic = m.topic.map { String(cString: $0) } ?? ""
            handler.mosquittoMessage(MQTTMessage(topic: topic, payload: payload, qos: Int(m.qos), retain: m.retain))
        }
        mosquitto_log_callback_set(handle) { _, userdata, level, text in
            guard let handler = MosquittoSession.handler(of: userdata), let text else { return }
            let mapped: MosquittoLogLevel
            switch level {
            case MOSQ_LOG_ERR: mapped = .error
            case MOSQ_LOG_WARNING: mapped = .warning
            case MOSQ_LOG_NOTICE, MOSQ_LOG_INFO: mapped = .info
            default: mapped = .debug
            }
            handler.mosquittoLog(level: mapped, text: String(cString: text))
        }
    }

    deinit {
        mosquitto_user_data_set(handle, nil)
        mosquitto_destroy(handle)
    }

    func attach(_ handler: any MosquittoEventHandler) {
        handlerLock.withLock { self.handler = handler }
    }

    private static func handler(of userdata: UnsafeMutableRawPointer?) -> (any MosquittoEventHandler)? {
        guard let userdata else { return nil }
        let session = Unmanaged<MosquittoSession>.fromOpaque(userdata).takeUnretainedValue()
        return session.handlerLock.withLock { session.handler }
    }

    // MARK: Options (before the network thread starts)

    /// MQTT 3.1.1 and the client-side send maximum (libmosquitto's in-flight window).
    func configure(maxInflight: Int) -> MosquittoStatus {
        var rc = mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311)
        guard rc == 0 else { return MosquittoStatus(code: rc) }
        rc = mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(maxInflight))
        guard rc == 0 else { return MosquittoStatus(code: rc) }
        rc = mosquitto_max_inflight_messages_set(handle, UInt32(maxInflight))
        return MosquittoStatus(code: rc)
    }

    /// mosquitto_will_set.
    func configureWill(_ will: MQTTMessage) -> MosquittoStatus {
        let rc = will.payload.withUnsafeBytes { bytes in
            mosquitto_will_set(handle, will.topic, Int32(bytes.count), bytes.baseAddress, Int32(will.qos), will.retain)
        }
        return MosquittoStatus(code: rc)
    }

    /// mosquitto_tls_set (CA, client cert and key) + mosquitto_tls_opts_set(SSL_VERIFY_PEER).
    /// Host name verification stays on: mosquitto_tls_insecure_set is only ever given false.
    func configureTLS(ca: String, cert: String, key: String) -> MosquittoStatus {
        var rc = mosquitto_tls_set(handle, ca, nil, cert, key, nil)
        guard rc == 0 else { return MosquittoStatus(code: rc, errnoValue: errno) }
        rc = mosquitto_tls_opts_set(handle, 1 /* SSL_VERIFY_PEER */, nil, nil)
        guard rc == 0 else { return MosquittoStatus(code: rc) }
        rc = mosquitto_tls_insecure_set(handle, false)
        return MosquittoStatus(code: rc)
    }

    // MARK: Network thread only

    /// mosquitto_connect_async: non-blocking TCP connect; the rest happens in `loop`.
    func connectAsync(host: String, port: Int, keepAliveSeconds: Int) -> MosquittoStatus {
        let rc = mosquitto_connect_async(handle, host, Int32(port), Int32(keepAliveSeconds))
        return MosquittoStatus(code: rc, errnoValue: errno)
    }

    /// mosquitto_reconnect_async with the host given to the first `connectAsync`.
    func reconnectAsync() -> MosquittoStatus {
        let rc = mosquitto_reconnect_async(handle)
        return MosquittoStatus(code: rc, errnoValue: errno)
    }

    /// One mosquitto_loop pass: waits up to `timeoutMilliseconds` for traffic (woken early
    /// by publish/subscribe/disconnect from other threads), reads, writes, keeps alive.
    func loop(timeoutMilliseconds: Int) -> MosquittoStatus {
        let rc = mosquitto_loop(handle, Int32(timeoutMilliseconds), 1)
        return MosquittoStatus(code: rc, errnoValue: errno)
    }

    // MARK: Any thread

    /// mosquitto_disconnect: queues DISCONNECT (so the broker drops the will).
    func disconnect() -> MosquittoStatus {
        MosquittoStatus(code: mosquitto_disconnect(handle))
    }

    /// mosquitto_publish. Returns the status and the message id libmosquitto assigned.
    func publish(_ message: MQTTMessage) -> (status: MosquittoStatus, mid: Int32) {
        var mid: Int32 = 0
        let rc = message.payload.withUnsafeBytes { bytes in
            mosquitto_publish(handle, &mid, message.topic, Int32(bytes.count), bytes.baseAddress, Int32(message.qos), message.retain)
        }
        return (MosquittoStatus(code: rc, errnoValue: errno), mid)
    }

    /// mosquitto_subscribe.
    func subscribe(_ filter: String, qos: Int) -> MosquittoStatus {
        MosquittoStatus(code: mosquitto_subscribe(handle, nil, filter, Int32(qos)))
    }

    // MARK: Checks

    static func isValidTopicName(_ topic: String) -> Bool {
        mosquitto_pub_topic_check(topic) == Int32(MOSQ_ERR_SUCCESS.rawValue)
    }

    static func isValidTopicFilter(_ filter: String) -> Bool {
        mosquitto_sub_topic_check(filter) == Int32(MOSQ_ERR_SUCCESS.rawValue)
    }

    static func connackText(_ code: Int32) -> String { String(cString: mosquitto_connack_string(code)) }
}
