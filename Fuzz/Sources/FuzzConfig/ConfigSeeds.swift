import Foundation
import FuzzSupport

/// The config seed corpus: the repository's examples, made loadable in the fixture folder (TLS
/// files beside the config, a real centre key), a full-featured variant, a minimal one, one using
/// YAML anchors, and the value syntaxes alone.
enum ConfigSeeds {
    static func all() throws -> [Seed] {
        let key = Data(FuzzFixture.centrePublicKey).base64EncodedString()
        var seeds: [Seed] = []
        for file in try FuzzFixture.yamlFiles(in: "examples") {
            let text = try FuzzFixture.repositoryText("examples/" + file)
                .replacingOccurrences(of: "/etc/edge-agent/", with: "")
                .replacingOccurrences(of: "<base64 Ed25519 public key>", with: key)
            seeds.append(Seed("examples-" + file, text))
        }
        seeds.append(Seed("full.yaml", full(key: key)))
        seeds.append(Seed("minimal.yaml", minimal))
        seeds.append(Seed("anchors.yaml", anchors))
        seeds.append(Seed("alias-key.yaml", aliasKey))
        for (i, s) in ["500ms", "1.5s", "10s", "5m", "2h", "7d", "0ms", "dusk", "dawn-10m", "dusk+1h", "23:00", "5:30", "cab-0042", "0x1F"].enumerated() {
            seeds.append(Seed("syntax-\(i)", s))
        }
        return seeds
    }

    /// Every section and optional key once: mqtts with TLS, a board serial port, two groups
    /// with neighbours and power checks, a bollard, an approach, the control section.
    static func full(key: String) -> String {
        """
        gateway:
          id: cab-0042
          location: {lat: -33.8688, lon: 151.2093}
          timezone: Australia/Sydney
          state_dir: state
          control_socket: run/control.sock
          control_group: edgetech
        uplink:
          broker: mqtts://[::1]:8883
          prefix: city/edge/v1
          tls: {ca: ca.pem, cert: gw.pem, key: gw.key}
          telemetry_interval: 30s
          outbox: {max_messages: 5000, max_age: 2d}
          centre_keys: {centre-2026: "\(key)", centre_2027.b: "\(key)"}
        board: ../Boards/imx8mp-gateway.yaml
        profiles_dir: ../Profiles
        buses:
          field: {tcp: "10.0.0.5", timeout: 1s, poll: 500ms}
          rs485-1: {rtu: rs485-1, baud: 9600, parity: N, data_bits: 8, stop_bits: 2, timeout: 300ms}
          rs485-2: {rtu: /dev/ttyUSB0, baud: 115200, parity: O}
        devices:
          lamp-01:   {profile: ref-luminaire, bus: rs485-1, unit: 1}
          lamp-02:   {profile: ref-luminaire, bus: rs485-1, unit: 0x02}
          pir-01:    {profile: ref-presence,  bus: field, unit: 20}
          pir-02:    {gpio: presence-a}
          bollard-1: {profile: ref-bollard,   bus: rs485-2, unit: 30}
          junction:  {profile: ref-signal-io, bus: field, unit: 247}
          bus-in-n:  {gpio: bus-detect-north}
          bus-out-n: {gpio: stopline-north}
          bus-in-s:  {gpio: bus-detect-south}
        lighting:
          rue-liberte:
            lamps: [lamp-01]
            presence: [pir-01, pir-02]
            base: 30
            boost: 100
            hold: 90s
            fade_up: 0ms
            fade_down: 1.5s
            night: {base: 10, from: "22:30", to: "5:00"}
            on: dusk+15m
            off: dawn-10m
            neighbours: [place-darcy]
            rated_w: 48.5
            power_tolerance: 0.25
            warm_up: 2m
          place-darcy:
            lamps:
              - lamp-02
            base: 0
            boost: 80
            on: "18:00"
            off: "06:30"
            neighbours: [rue-liberte]
        bollards:
          bollard-1: {pre_warning: 5s, travel_timeout: 12s, max_reversals: 2}
        priority:
          north: {device: junction, approach: 1, checkin: bus-in-n, checkout: bus-out-n, max_hold: 90s, min_interval: 0s}
          south: {device: junction, approach: 2, checkin: bus-in-s}
        control: {period: 5ms, realtime_priority: 0}

        """
    }

    static let minimal = """
        gateway: {id: g, location: {lat: 0, lon: 0}, timezone: UTC}
        uplink: {broker: "mqtt://localhost"}
        board: Boards/sim.yaml

        """

    /// Nested aliases with the deepest as a key: took exponential time in Yams' duplicate-key
    /// check before YAMLFile refused alias keys (docs/reliability/fuzzing.md).
    static let aliasKey = """
        a0: &a0 [x,x,x,x,x,x,x,x,x,x]
        a1: &a1 [*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0]
        a2: &a2 [*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1]
        a3: &a3 [*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2]
        a4: &a4 [*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3]
        a5: &a5 [*a4,*a4,*a4,*a4,*a4,*a4,*a4,*a4,*a4,*a4]
        a6: &a6 [*a5,*a5,*a5,*a5,*a5,*a5,*a5,*a5,*a5,*a5]
        ? *a6
        : 1

        """

    static let anchors = """
        gateway:
          id: cab-7
          location: {lat: 69.6492, lon: 18.9553}   # Tromso: polar day and night
          timezone: Europe/Oslo
        uplink:
          broker: mqtt://127.0.0.1:1883
        board: Boards/sim.yaml
        buses:
          field: &bus {tcp: "127.0.0.1:1502", timeout: 200ms}
        devices:
          lamp-01: &lamp {profile: ref-luminaire, bus: field, unit: 1}
          lamp-02: {profile: ref-luminaire, bus: field, unit: 2}
        lighting:
          harbour:
            lamps: [lamp-01, lamp-02]
            base: &level 40
            boost: *level
            on: dusk
            off: dawn
            night: {base: 5, from: "00:00", to: "23:59"}

        """
}
