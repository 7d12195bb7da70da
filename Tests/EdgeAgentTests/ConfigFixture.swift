import EdgeAgent
import Foundation
import TestSupport

/// A scratch folder holding a valid agent.yaml (CONTRACT.md section 5 shape plus a second
/// group and an RTU bus) with TLS files beside it; board and profiles come from the repo.
/// Tests mutate `baseText` and load it with `ConfigLoader.load(text:path:)`.
final class ConfigFixture: Sendable {
    let dir = ScratchDir("edge-config")
    let configPath: String
    static let repo = BuildProducts.packageRoot.path
    static let simBoard = repo + "/Boards/sim.yaml"
    static let profiles = repo + "/Profiles"
    /// base64 of 32 bytes 0x01...0x20.
    static let centreKey = Data((1...32).map { UInt8($0) }).base64EncodedString()

    init() {
        for name in ["ca.pem", "gw.pem", "gw.key"] { _ = dir.write(name, "test \(name)\n") }
        configPath = dir.file("agent.yaml")
    }

    var baseText: String { Self.base }

    /// Loads `text` as if it were `agent.yaml` in the scratch folder.
    func load(_ text: String) throws(ConfigError) -> AgentConfig {
        try ConfigLoader.load(text: text, path: configPath)
    }

    /// `baseText` with `old` (which must occur exactly once) replaced by `new`.
    static func mutate(_ old: String, _ new: String) -> String? {
        let parts = base.components(separatedBy: old)
        guard parts.count == 2 else { return nil }
        return parts.joined(separator: new)
    }

    /// 1-based number of the first line of `text` containing `needle`.
    static func line(of needle: String, in text: String) -> Int? {
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where l.contains(needle) {
            return i + 1
        }
        return nil
    }

    static let base = """
    gateway:
      id: cab-0042
      location: {lat: 47.3220, lon: 5.0415}
      timezone: Europe/Paris
      state_dir: state
      control_socket: run/control.sock
      control_group: root
    uplink:
      broker: mqtts://broker.example:8883
      prefix: edge/v1
      tls: {ca: ca.pem, cert: gw.pem, key: gw.key}
      telemetry_interval: 60s
      outbox: {max_messages: 1000, max_age: 7d}
      centre_keys: {centre-2026: "\(centreKey)"}
    board: \(simBoard)
    profiles_dir: \(profiles)
    buses:
      field: {tcp: "127.0.0.1:1502", timeout: 200ms}
      rs485-1: {rtu: /dev/ttyS1, baud: 19200, parity: E, timeout: 300ms}
    devices:
      lamp-01:   {profile: ref-luminaire, bus: field, unit: 1}
      lamp-02:   {profile: ref-luminaire, bus: rs485-1, unit: 2}
      pir-01:    {profile: ref-presence,  bus: field, unit: 20}
      pir-02:    {gpio: presence-a}
      bollard-1: {profile: ref-bollard,   bus: field, unit: 30}
      junction:  {profile: ref-signal-io, bus: field, unit: 40}
      bus-in-n:  {gpio: bus-detect-north}
      bus-out-n: {gpio: stopline-north}
    lighting:
      rue-liberte:
        lamps: [lamp-01]
        presence: [pir-01, pir-02]
        base: 30
        boost: 100
        hold: 60s
        fade_up: 500ms
        fade_down: 10s
        night: {base: 20, from: "23:00", to: "05:00"}
        on: dusk
        off: dawn
        neighbours: [place-darcy]
      place-darcy:
        lamps: [lamp-02]
        base: 20
        boost: 80
        on: dusk+15m
        off: "06:30"
    bollards:
      bollard-1: {pre_warning: 3s, travel_timeout: 8s, auto_raise_after: 10s}
    priority:
      north: {device: junction, approach: 1, checkin: bus-in-n, checkout: bus-out-n, max_hold: 60s, min_interval: 20s}
    control: {period: 10ms, realtime_priority: 50}

    """
}
