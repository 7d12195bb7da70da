import FoundationEssentials
import EdgeRuntime

/// The alarms the agent has published as active and not yet as cleared
/// (`<state_dir>/alarms`, one `<device>/<code> <severity>` per line, replaced atomically with
/// fsync on every change), so that after a restart it can tell the centre about an alarm that
/// cleared while it was not watching (a lamp replaced while the agent was down).
///
/// Thread-safe. A write failure (disk full) keeps the in-memory set and is retried on the next
/// change; the re-assertion at start then works from what the file last held.
final class AlarmLedger: Sendable {
    let path: String
    private let entries: Locked<[String: String]>   // "device/code" -> severity

    init(path: String) {
        self.path = path
        var loaded: [String: String] = [:]
        if let text = try? DurableFile.read(path, store: "alarm ledger") {
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.count == 2, words[0].contains("/") else { continue }
                loaded[String(words[0])] = String(words[1])
            }
        }
        entries = Locked(loaded)
    }

    /// The alarms published as active, with their severity.
    var active: [String: String] { entries.withLock { $0 } }

    /// Notes that `key` (`device/code`) was published as `active` (or cleared).
    func note(_ key: String, active: Bool, severity: String) {
        let snapshot: [String: String]? = entries.withLock { e in
            if active {
                if e[key] == severity { return nil }
                e[key] = severity
            } else {
                if e[key] == nil { return nil }
                e[key] = nil
            }
            return e
        }
        guard let snapshot else { return }
        let text = snapshot.keys.sorted().map { "\($0) \(snapshot[$0]!)\n" }.joined()
        try? DurableFile.replace(path, contents: text, store: "alarm ledger")
    }
}
