#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
import FoundationEssentials
import Logging
import Protocols

/// One message for the centre, before it gets its sequence number.
struct UplinkMessage: Sendable {
    enum Class: Int, Sendable { case status = 0, alarm = 1, event = 2, reply = 3, telemetry = 4 }
    var topic: String
    /// JSON object fields (without `seq`, which the outbox adds).
    var body: [String: ControlValue]
    var retain: Bool
    var klass: Class
}

/// Formats RFC 3339 UTC timestamps with milliseconds (`2026-11-23T06:30:00.123Z`).
enum Timestamp {
    static func rfc3339(_ date: Date = Date()) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        let ms = Int((date.timeIntervalSince1970 - Double(t)) * 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(cFormat: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), ms)
    }
}
