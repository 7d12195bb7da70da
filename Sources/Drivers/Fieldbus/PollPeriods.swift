/// Default poll periods by device role, and which roles are safety devices.
///
/// Why these: a bollard's loop, photocell and end switches, and the junction's acknowledgement,
/// gate motion and priority; 50 ms keeps their sensor age within a few control steps (10 ms)
/// and well under the 300 ms `max_sensor_age`. A presence sensor boosts lamps that fade up over
/// hundreds of ms: 100 ms is not seen. A luminaire's level, power and status change slowly and
/// are judged over seconds (warm-up, failure): 2 s. Energy meters (no profile kind yet; when one
/// is added it takes `meter`): 10 s. The period of one device is set with `poll:` on its entry,
/// of every device of a bus with `poll:` on the bus; otherwise the role decides.
///
/// Fast and slow blocks: a poll reads, at every period, only the blocks that hold a safety
/// input of the device's kind (`PointRole.isSafetyInput`); its other blocks (coil read-back,
/// lux, telemetry) are read at `slowBlocks`, or at every poll when the device's period is that
/// long or longer, and also at the first poll of a device, at a probe, at the first poll after
/// any write to it and at any poll after a failed one (rules: `ModbusBus`).
public enum PollPeriods {
    public static let bollard = Duration.milliseconds(50)
    public static let signalIO = Duration.milliseconds(50)
    public static let presence = Duration.milliseconds(100)
    public static let luminaire = Duration.seconds(2)
    public static let meter = Duration.seconds(10)
    /// How often a device's blocks without a safety input are read (`PointCodec.Block.Refresh.slow`).
    /// Why 1 s: the coil read-back only tells that a unit lost what was written (a reboot resets
    /// coils to off, their safe value), and the output is then written again within this plus a
    /// poll; lux changes over minutes. A bollard at 50 ms then makes 21 reads a second, not 40.
    public static let slowBlocks = Duration.seconds(1)

    /// How often a device polled every `period` reads its slow blocks, ns: nil when at every
    /// poll (its period is `slowBlocks` or longer).
    public static func slowBlockPeriod(devicePeriod period: Duration) -> Int64? {
        period >= slowBlocks ? nil : slowBlocks.nanoseconds
    }

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
