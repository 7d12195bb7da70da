public import Drivers

/// The agent's whole configuration, validated: `agent.yaml` plus the board file and the
/// device profiles it references. Every cross-reference (bus, profile, GPIO line, lamp,
/// presence sensor, device) has been checked when a value of this type exists.
public struct AgentConfig: Sendable, Equatable {
    public var sourcePath: String
    public var gateway: Gateway
    public var uplink: Uplink
    public var board: Board
    public var buses: [String: BusConfig]
    public var devices: [String: DeviceConfig]
    public var lighting: [String: LightingGroupConfig]
    public var bollards: [String: BollardConfig]
    public var priority: [String: ApproachConfig]
    /// Profiles referenced by devices, by profile name.
    public var profiles: [String: DeviceProfile]
    public var control: ControlSettings

    public init(sourcePath: String, gateway: Gateway, uplink: Uplink, board: Board, buses: [String: BusConfig], devices: [String: DeviceConfig], lighting: [String: LightingGroupConfig], bollards: [String: BollardConfig], priority: [String: ApproachConfig], profiles: [String: DeviceProfile], control: ControlSettings) {
        self.sourcePath = sourcePath
        self.gateway = gateway
        self.uplink = uplink
        self.board = board
        self.buses = buses
        self.devices = devices
        self.lighting = lighting
        self.bollards = bollards
        self.priority = priority
        self.profiles = profiles
        self.control = control
    }

    /// This gateway (`gateway:`): identity, site position for dusk/dawn, local files.
    /// Paths are absolute (relative ones were resolved against the config file's folder).
    public struct Gateway: Sendable, Equatable {
        /// `[a-z0-9-]+`
        public var id: String
        public var latitude: Double
        public var longitude: Double
        /// IANA name, e.g. Europe/Paris.
        public var timezone: String
        public var stateDirectory: String
        public var controlSocket: String
        /// The technicians' group: may use every verb of the control socket, and owns the
        /// socket file (mode 0660); nil = the process's group.
        public var controlGroup: String?
        /// The read-only group (`status`, `watch`, `io read`); nil = none.
        public var monitorGroup: String?
        /// The gids of `controlGroup` and `monitorGroup`, resolved when the config was loaded.
        public var controlGroupID: UInt32?
        public var monitorGroupID: UInt32?
        public init(id: String, latitude: Double, longitude: Double, timezone: String, stateDirectory: String, controlSocket: String, controlGroup: String?,
                    monitorGroup: String? = nil, controlGroupID: UInt32? = nil, monitorGroupID: UInt32? = nil) {
            self.id = id
            self.latitude = latitude
            self.longitude = longitude
            self.timezone = timezone
            self.stateDirectory = stateDirectory
            self.controlSocket = controlSocket
            self.controlGroup = controlGroup
            self.monitorGroup = monitorGroup
            self.controlGroupID = controlGroupID
            self.monitorGroupID = monitorGroupID
        }
    }

    /// The link to the centre (`uplink:`). Invariant: an `mqtts://` broker has `tls`; TLS
    /// files existed when the config was loaded; every centre key is 32 bytes.
    public struct Uplink: Sendable, Equatable {
        /// `mqtt://host:port` or `mqtts://host:port`.
        public var broker: String
        public var prefix: String
        public var tls: TLS?
        public var telemetryInterval: Duration
        public var outboxMaxMessages: Int
        public var outboxMaxAge: Duration
        /// Key id -> raw 32-byte Ed25519 public key.
        public var centreKeys: [String: [UInt8]]
        /// MQTT keep-alive: how soon a dead or silent broker link is noticed (5 s...65535 s).
        public var keepAlive: Duration
        /// The outbox's size bound, topics and payloads summed (`outbox.max_bytes`, default 256 MiB).
        public var outboxMaxBytes: Int
        /// The longest lifetime (`expires - issued`) a centre command may have (default 1 h).
        public var maxCommandLifetime: Duration
        /// More broker URLs after `broker` (`uplink.broker` as a list), same scheme: fail-over order.
        public var fallbackBrokers: [String] = []
        /// Reconnect backoff (`uplink.reconnect`): first delay, cap, jitter fraction 0...1.
        public var reconnectInitial: Duration = .milliseconds(500)
        public var reconnectMax: Duration = .seconds(30)
        public var reconnectJitter: Double = 0.25
        /// Topic layout and payload encoding on the wire (`uplink.dialect`).
        public var dialect: Dialect = .edge
        /// Sparkplug B settings (`uplink.sparkplug`), used with `dialect == .sparkplug`.
        public var sparkplug = Sparkplug()

        /// `broker` then `fallbackBrokers`.
        public var brokers: [String] { [broker] + fallbackBrokers }

        public enum Dialect: String, Sendable, Equatable, CaseIterable {
            /// The topic layout and JSON payloads of docs/CONTRACT.md.
            case edge
            /// Sparkplug B 3.0 (docs/SPARKPLUG.md).
            case sparkplug
        }

        public struct Sparkplug: Sendable, Equatable {
            /// The Sparkplug group id (`spBv1.0/<group>/...`).
            public var groupID = "edge"
            /// A primary host application id: data is held while its STATE is not online.
            public var primaryHost: String?
            public init(groupID: String = "edge", primaryHost: String? = nil) {
                self.groupID = groupID
                self.primaryHost = primaryHost
            }
        }
        public init(broker: String, prefix: String, tls: TLS?, telemetryInterval: Duration, outboxMaxMessages: Int, outboxMaxAge: Duration,
                    centreKeys: [String: [UInt8]], keepAlive: Duration = .seconds(30), outboxMaxBytes: Int = 256 << 20,
                    maxCommandLifetime: Duration = .seconds(3600)) {
            self.keepAlive = keepAlive
            self.outboxMaxBytes = outboxMaxBytes
            self.maxCommandLifetime = maxCommandLifetime
            self.broker = broker
            self.prefix = prefix
            self.tls = tls
            self.telemetryInterval = telemetryInterval
            self.outboxMaxMessages = outboxMaxMessages
            self.outboxMaxAge = outboxMaxAge
            self.centreKeys = centreKeys
        }
        /// Absolute paths of the pinned CA, the client certificate and its key (PEM).
        public struct TLS: Sendable, Equatable {
            public var ca: String
            public var cert: String
            public var key: String
            public init(ca: String, cert: String, key: String) {
                self.ca = ca
                self.cert = cert
                self.key = key
            }
        }
    }

    /// Control-loop thread settings (`control:` section, optional).
    public struct ControlSettings: Sendable, Equatable {
        /// A fixed period the loop also runs at, besides its deadlines and inputs; nil (the
        /// default) = the loop sleeps until the next deadline or input, at most 1 s.
        public var period: Duration?
        /// SCHED_FIFO priority to ask for (default 50); 0 = do not ask.
        public var realtimePriority: Int
        public init(period: Duration? = nil, realtimePriority: Int = 50) {
            self.period = period
            self.realtimePriority = realtimePriority
        }
    }
}

/// A gateway hardware profile (`Boards/*.yaml`): GPIO chips and named lines, serial ports.
public struct Board: Sendable, Equatable {
    public var name: String
    public var description: String
    /// GPIO backend for all chips of this board.
    public var gpioBackend: GPIOBackendKind
    /// For the simulated backend: the edge-sim control socket hosting the lines (nil = in-process lines).
    public var simulatorSocket: String?
    /// Named lines.
    public var lines: [String: LineConfig]
    /// Serial ports by name (e.g. rs485-1 -> /dev/ttymxc1).
    public var serialPorts: [String: String]

    public init(name: String, description: String, gpioBackend: GPIOBackendKind, simulatorSocket: String?, lines: [String: LineConfig], serialPorts: [String: String]) {
        self.name = name
        self.description = description
        self.gpioBackend = gpioBackend
        self.simulatorSocket = simulatorSocket
        self.lines = lines
        self.serialPorts = serialPorts
    }

    public enum GPIOBackendKind: String, Sendable, Equatable {
        case libgpiod
        case simulated
    }

    public struct LineConfig: Sendable, Equatable {
        /// Chip name (`gpiochip0`) or label.
        public var chip: String
        public var offset: UInt32
        public var direction: Direction
        public var activeLow: Bool
        /// Inputs only; 0 = none.
        public var debounce: Duration
        public init(chip: String, offset: UInt32, direction: Direction, activeLow: Bool = false, debounce: Duration = .zero) {
            self.chip = chip
            self.offset = offset
            self.direction = direction
            self.activeLow = activeLow
            self.debounce = debounce
        }
        public enum Direction: String, Sendable, Equatable {
            case input
            case output
        }
    }
}

/// One Modbus bus: a TCP endpoint or an RS-485 port.
public struct BusConfig: Sendable, Equatable {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// `device` is a path, or a board serial-port name already resolved to its path.
        case rtu(device: String, baud: Int, parity: Character, dataBits: Int, stopBits: Int)
    }
    public var name: String
    public var transport: Transport
    /// Response timeout per request.
    public var timeout: Duration
    /// The bus's `poll:`: the period of every device of the bus without a `poll:` of its own;
    /// nil (not set) = each device's role decides (`PollPeriods`: bollards and signal I/O 50 ms,
    /// presence 100 ms, luminaires 2 s).
    public var pollInterval: Duration?
    public init(name: String, transport: Transport, timeout: Duration, pollInterval: Duration? = nil) {
        self.name = name
        self.transport = transport
        self.timeout = timeout
        self.pollInterval = pollInterval
    }
}

/// A field device: either a Modbus unit with a profile, or a GPIO line of the board.
public struct DeviceConfig: Sendable, Equatable {
    public enum Attachment: Sendable, Equatable {
        case modbus(profile: String, bus: String, unit: UInt8)
        /// A line named in the board file.
        case gpio(line: String)
        /// A bollard or signal I/O wired to the board's lines, one line per point (role ->
        /// line name): outputs (coil roles) on output lines, inputs (discrete roles) on inputs.
        case gpioPoints(kind: DeviceProfile.Kind, lines: [PointRole: String])
    }
    public var name: String
    public var attachment: Attachment
    /// The device's `poll:` (Modbus only): its poll period, over the bus's and the role's.
    public var pollPeriod: Duration?
    public init(name: String, attachment: Attachment, pollPeriod: Duration? = nil) {
        self.name = name
        self.attachment = attachment
        self.pollPeriod = pollPeriod
    }
}

/// When the lamps of a group are on: astronomical or fixed time, with an offset.
public enum DayBoundary: Sendable, Equatable {
    /// Sunset (dusk) or sunrise (dawn) plus `offsetMinutes` (may be negative).
    case dusk(offsetMinutes: Int)
    case dawn(offsetMinutes: Int)
    /// Local wall-clock time.
    case time(hour: Int, minute: Int)
}

/// A lighting group (`lighting:`): lamps dimmed together from presence sensors and a schedule.
public struct LightingGroupConfig: Sendable, Equatable {
    public var name: String
    public var lamps: [String]
    public var presence: [String]
    public var base: Int
    public var boost: Int
    public var hold: Duration
    public var fadeUp: Duration
    public var fadeDown: Duration
    public var night: Night?
    /// nil = always on.
    public var on: DayBoundary?
    public var off: DayBoundary?
    /// Other groups boosted with this one on presence (the "light wave").
    public var neighbours: [String]
    /// Lamp monitoring: allowed power deviation (fraction, default 0.3) and warm-up.
    public var powerTolerance: Double
    public var warmUp: Duration
    /// Rated power at 100 %, watts (expected power = rated * level / 100); nil = no power check.
    public var ratedPowerW: Double?

    public init(name: String, lamps: [String], presence: [String], base: Int, boost: Int, hold: Duration, fadeUp: Duration, fadeDown: Duration, night: Night?, on: DayBoundary?, off: DayBoundary?, neighbours: [String] = [], powerTolerance: Double = 0.3, warmUp: Duration = .seconds(60), ratedPowerW: Double? = nil) {
        self.name = name
        self.lamps = lamps
        self.presence = presence
        self.base = base
        self.boost = boost
        self.hold = hold
        self.fadeUp = fadeUp
        self.fadeDown = fadeDown
        self.night = night
        self.on = on
        self.off = off
        self.neighbours = neighbours
        self.powerTolerance = powerTolerance
        self.warmUp = warmUp
        self.ratedPowerW = ratedPowerW
    }

    /// A lower base level between two local times (may cross midnight).
    public struct Night: Sendable, Equatable {
        public var base: Int
        public var fromHour: Int
        public var fromMinute: Int
        public var toHour: Int
        public var toMinute: Int
        public init(base: Int, fromHour: Int, fromMinute: Int, toHour: Int, toMinute: Int) {
            self.base = base
            self.fromHour = fromHour
            self.fromMinute = fromMinute
            self.toHour = toHour
            self.toMinute = toMinute
        }
    }
}

/// A bollard's control settings (`bollards:`); the key is a device of kind bollard.
public struct BollardConfig: Sendable, Equatable {
    public var name: String
    public var preWarning: Duration
    public var travelTimeout: Duration
    /// nil = never raise automatically.
    public var autoRaiseAfter: Duration?
    /// Reversals before the bollard stays down until a new command (default 3).
    public var maxReversals: Int
    /// The oldest poll of its inputs a movement may start or continue on (default 300 ms, at most 500 ms).
    public var maxSensorAge: Duration
    public init(name: String, preWarning: Duration, travelTimeout: Duration, autoRaiseAfter: Duration?, maxReversals: Int = 3,
                maxSensorAge: Duration = BollardController.defaultMaxSensorAge) {
        self.maxSensorAge = maxSensorAge
        self.name = name
        self.preWarning = preWarning
        self.travelTimeout = travelTimeout
        self.autoRaiseAfter = autoRaiseAfter
        self.maxReversals = maxReversals
    }
}

/// A junction approach with bus priority (`priority:`).
public struct ApproachConfig: Sendable, Equatable {
    public var name: String
    /// A device of kind signal-io.
    public var device: String
    /// 1-8.
    public var approach: Int
    /// GPIO devices giving check-in / check-out edges (optional: centre commands may check in).
    public var checkin: String?
    public var checkout: String?
    public var maxHold: Duration
    public var minInterval: Duration
    public init(name: String, device: String, approach: Int, checkin: String?, checkout: String?, maxHold: Duration, minInterval: Duration) {
        self.name = name
        self.device = device
        self.approach = approach
        self.checkin = checkin
        self.checkout = checkout
        self.maxHold = maxHold
        self.minInterval = minInterval
    }
}
