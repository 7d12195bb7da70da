import Drivers
import Logging
import Protocols

/// The field as the control step sees it: writes to a device by its id in the compiled config
/// (`FieldMap`), Modbus points or a GPIO output line, completion on any thread. `FieldIO` is
/// the real one; tests put a recorder in its place and run the step on a virtual clock.
protocol FieldPort: Sendable {
    func write(device: Int, points: [PointWrite], priority: WritePriority,
               completion: @escaping @Sendable (Result<Void, FieldDeviceError>) -> Void)
}

/// Everything the agent touches in the field: one `ModbusBus` per configured bus and the
/// board's GPIO backend, built from the validated config. Inputs arrive through the two
/// handlers given to `start`; outputs go out through `write`.
final class FieldIO: FieldPort, @unchecked Sendable {
    let buses: [String: ModbusBus]
    let gpio: (any GPIOBackend)?
    private(set) var gpioInputs: [String: any GPIOInput] = [:]     // by device name
    private(set) var gpioOutputs: [String: any GPIOOutput] = [:]   // by device name
    /// Output lines of devices wired point by point (GPIO bollards, signal I/O), by device and point.
    private(set) var pointOutputs: [String: [String: any GPIOOutput]] = [:]
    /// Lines of devices wired point by point: line -> (device, point).
    let pointOfLine: [String: (device: String, role: PointRole)]
    /// Device name -> bus name, for Modbus devices.
    let busOfDevice: [String: String]
    /// Board line name -> device name, for GPIO devices.
    let deviceOfLine: [String: String]
    /// Device id (`FieldMap`) -> name.
    let names: [String]
    private let config: AgentConfig
    private let logger: Logger

    /// `map`: the compiled config whose device ids `write(device:)` takes (the control step's
    /// own, so both number the devices the same way); built from `config` when not given.
    init(config: AgentConfig, map: FieldMap? = nil, logger: Logger) {
        self.config = config
        self.logger = logger
        var buses: [String: ModbusBus] = [:]
        for (name, bus) in config.buses {
            let transport: ModbusTransport
            switch bus.transport {
            case .tcp(let host, let port):
                transport = .tcp(host: host, port: port)
            case .rtu(let device, let baud, let parity, let dataBits, let stopBits):
                transport = .rtu(device: device, baud: baud, parity: ModbusParity(rawValue: parity) ?? .even, dataBits: dataBits, stopBits: stopBits)
            }
            buses[name] = ModbusBus(name: name, transport: transport, timeout: bus.timeout, pollInterval: bus.pollInterval, logger: logger)
        }
        var busOfDevice: [String: String] = [:]
        var deviceOfLine: [String: String] = [:]
        var pointOfLine: [String: (device: String, role: PointRole)] = [:]
        names = (map ?? FieldMap(config: config)).names
        for (id, name) in names.enumerated() {
            switch config.devices[name]!.attachment {
            case .modbus(let profile, let bus, let unit):
                if let p = config.profiles[profile], let b = buses[bus] {
                    b.addDevice(ModbusDeviceSpec(id: id, name: name, unit: unit, profile: p), pollPeriod: config.devices[name]!.pollPeriod)
                    busOfDevice[name] = bus
                }
            case .gpio(let line):
                deviceOfLine[line] = name
            case .gpioPoints(_, let lines):
                for (role, line) in lines { pointOfLine[line] = (name, role) }
            }
        }
        self.pointOfLine = pointOfLine
        self.buses = buses
        self.busOfDevice = busOfDevice
        self.deviceOfLine = deviceOfLine
        switch config.board.gpioBackend {
        case .libgpiod:
            gpio = deviceOfLine.isEmpty && pointOfLine.isEmpty ? nil : LibGPIODBackend(consumer: "edge-agent", logger: logger)
        case .simulated:
            if let socket = config.board.simulatorSocket {
                gpio = SimulatorLinkGPIOBackend(socketPath: socket, logger: logger)
            } else {
                gpio = SimulatedGPIOBackend()
            }
        }
    }

    /// Opens GPIO lines and starts every bus thread and the GPIO event thread.
    func start(onReading: @escaping @Sendable (DeviceReading) -> Void, onEdge: @escaping @Sendable (GPIOEdge) -> Void) throws(GPIOError) {
        if let gpio {
            for (line, device) in deviceOfLine.sorted(by: { $0.key < $1.key }) {
                guard let lc = config.board.lines[line] else { continue }
                switch lc.direction {
                case .input:
                    gpioInputs[device] = try gpio.openInput(name: line, chip: lc.chip, offset: lc.offset, activeLow: lc.activeLow, debounce: lc.debounce)
                case .output:
                    gpioOutputs[device] = try gpio.openOutput(name: line, chip: lc.chip, offset: lc.offset, activeLow: lc.activeLow, initial: false)
                }
            }
            // Devices wired point by point: outputs start off (the safe state), inputs report
            // their first level as an initial edge.
            for (line, point) in pointOfLine.sorted(by: { $0.key < $1.key }) {
                guard let lc = config.board.lines[line] else { continue }
                switch lc.direction {
                case .input:
                    _ = try gpio.openInput(name: line, chip: lc.chip, offset: lc.offset, activeLow: lc.activeLow, debounce: lc.debounce)
                case .output:
                    pointOutputs[point.device, default: [:]][point.role.pointName] =
                        try gpio.openOutput(name: line, chip: lc.chip, offset: lc.offset, activeLow: lc.activeLow, initial: false)
                }
            }
            try gpio.startEvents(onEdge)
        }
        for bus in buses.values {
            bus.onReading(onReading)
            bus.start()
        }
    }

    /// Queues a write of profile points to a Modbus device, or sets a GPIO output device.
    func write(device id: Int, points: [PointWrite], priority: WritePriority,
               completion: @escaping @Sendable (Result<Void, FieldDeviceError>) -> Void) {
        guard id >= 0, id < names.count else {
            return completion(.failure(FieldDeviceError(device: "#\(id)", message: "no such device")))
        }
        write(device: names[id], points: points, priority: priority, completion: completion)
    }

    /// `write(device:)` by name.
    func write(device: String, points: [PointWrite], priority: WritePriority,
               completion: @escaping @Sendable (Result<Void, FieldDeviceError>) -> Void) {
        if let busName = busOfDevice[device], let bus = buses[busName] {
            bus.write(device: device, points: points, priority: priority, completion: completion)
        } else if let outputs = pointOutputs[device] {
            // In the order given (off before on); the first failure stops the write, leaving
            // only what was already set (safe values first) changed.
            for p in points {
                guard let out = outputs[p.point] else {
                    return completion(.failure(FieldDeviceError(device: device, message: "no GPIO line for point \(p.point)")))
                }
                do { try out.write(p.value != 0) } catch {
                    return completion(.failure(FieldDeviceError(device: device, message: "\(p.point): \(error)", isCommunicationLoss: true)))
                }
            }
            completion(.success(()))
        } else if let out = gpioOutputs[device], let value = points.first?.value {
            do {
                try out.write(value != 0)
                completion(.success(()))
            } catch {
                completion(.failure(FieldDeviceError(device: device, message: "\(error)", isCommunicationLoss: true)))
            }
        } else {
            completion(.failure(FieldDeviceError(device: device, message: "no bus or GPIO output for this device")))
        }
    }

    /// Stops buses (after their queued safety writes) and the GPIO thread.
    func stop() {
        for bus in buses.values { bus.stop() }
        gpio?.stop()
    }
}
