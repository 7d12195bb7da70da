/// Default poll periods by device role, and which roles are safety devices.
///
/// Why these: a bollard's loop, photocell and end switches, and the junction's acknowledgement,
/// gate motion and priority; 50 ms keeps their sensor age within a few control steps (10 ms)
/// and well under the 300 ms `max_sensor_age`. A presence sensor boosts lamps that fade up over
/// hundreds of ms: 100 ms is not seen. A luminaire's level, power and status change slowly and
/// are judged over seconds (warm-up, failure): 2 s. Energy meters (no profile kind yet; when one
/// is added it takes `meter`): 10 s. The period of one device is set with `poll:` on its entry,
/// of every device of a bus with `poll:` on the bus; otherwise the role decides.
public enum PollPeriods {
    public static let bollard = Duration.milliseconds(50)
    public static let signalIO = Duration.milliseconds(50)
    public static let presence = Duration.milliseconds(100)
    public static let luminaire = Duration.seconds(2)
    public static let meter = Duration.seconds(10)

    /// The role's default period.
    public static func period(for kind: DeviceProfile.Kind) -> Duration {
        switch kind {
        case .bollard: return bollard
        case .signalIO: return signalIO
        case .presence: return presence
        case .luminaire: return luminaire
        }
    }

    /// The period a device is polled at: its own `poll`, else its bus's `poll`, else its role's
    /// default. The one rule the config check, the bus and the sensor-age check all use.
    public static func period(device: Duration?, bus: Duration?, kind: DeviceProfile.Kind) -> Duration {
        device ?? bus ?? period(for: kind)
    }

    /// Safety devices' polls go before other work, and `config check` refuses a bus that cannot
    /// poll them within their periods.
    public static func isSafety(_ kind: DeviceProfile.Kind) -> Bool {
        switch kind {
        case .bollard, .signalIO, .presence: return true
        case .luminaire: return false
        }
    }
}
