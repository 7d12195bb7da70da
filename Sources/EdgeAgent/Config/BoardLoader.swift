public import ConfigToolkit
import FoundationEssentials

/// Loads and validates gateway board files (`Boards/*.yaml`): the GPIO lines and serial
/// ports of one kind of gateway hardware, by the names the config uses.
///
/// File shape: `name`, `description`, `gpio: {backend: libgpiod|simulated,
/// simulator_socket: PATH (simulated only), lines: {NAME: {chip: gpiochip0, offset: 17,
/// direction: input|output, active_low: false, debounce: 20ms}}}`, `serial: {rs485-1: /dev/ttymxc1}`.
///
/// Checks: line names are ids; a chip is named; no two lines share a chip offset; debounce
/// only on inputs; serial ports are absolute device paths. A board without `gpio:` has no
/// lines (libgpiod backend). Relative `simulator_socket` paths resolve against the board's folder.
public enum BoardLoader {
    public static func load(path: String) throws(ConfigError) -> Board {
        let text = try YAMLFile.read(path)
        return try parse(text, file: path)
    }

    /// Parses board text; `file` names it in errors and anchors relative paths.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> Board {
        let root = try YAMLFile.parse(text, file: file)
        let top = try root.map(allowed: ["name", "description", "gpio", "serial"], required: ["name"])
        let name = try top.required("name").string()
        let description = try top["description"]?.string() ?? ""
        var backend = Board.GPIOBackendKind.libgpiod
        var simulatorSocket: String?
        var lines: [String: Board.LineConfig] = [:]
        if let gpioNode = top["gpio"] {
            let gpio = try gpioNode.map(allowed: ["backend", "simulator_socket", "lines"], required: ["backend"])
            let backendNode = try gpio.required("backend")
            let b = try backendNode.string()
            guard let parsed = Board.GPIOBackendKind(rawValue: b) else {
                throw backendNode.error("unknown GPIO backend \"\(b)\"\(Suggest.suffix(b, among: ["libgpiod", "simulated"])) (use libgpiod or simulated)")
            }
            backend = parsed
            if let s = gpio["simulator_socket"] {
                guard backend == .simulated else { throw s.error("simulator_socket applies to the simulated backend only") }
                simulatorSocket = try s.path(relativeTo: folder(of: file))
            }
            var used: [String: String] = [:]  // "chip/offset" -> line name
            for (lineName, value) in try gpio["lines"]?.openMap() ?? [] {
                guard ConfigSyntax.isID(lineName) else {
                    throw value.keyError("bad line name \"\(lineName)\" (use lowercase letters, digits and \"-\")")
                }
                let m = try value.map(allowed: ["chip", "offset", "direction", "active_low", "debounce"], required: ["chip", "offset", "direction"])
                let chip = try m.required("chip").string()
                let offsetNode = try m.required("offset")
                let offset = try offsetNode.int(in: 0...65535)
                let dirNode = try m.required("direction")
                let d = try dirNode.string()
                guard let direction = Board.LineConfig.Direction(rawValue: d) else {
                    throw dirNode.error("unknown direction \"\(d)\"\(Suggest.suffix(d, among: ["input", "output"])) (use input or output)")
                }
                let activeLow = try m["active_low"]?.bool() ?? false
                var debounce = Duration.zero
                if let db = m["debounce"] {
                    guard direction == .input else { throw db.error("debounce applies to input lines only") }
                    debounce = try db.duration(allowZero: true, max: .seconds(10))
                }
                let slot = "\(chip)/\(offset)"
                if let other = used[slot] {
                    throw offsetNode.error("\(chip) offset \(offset) is already line \(other)")
                }
                used[slot] = lineName
                lines[lineName] = Board.LineConfig(chip: chip, offset: UInt32(offset), direction: direction, activeLow: activeLow, debounce: debounce)
            }
        }
        var serial: [String: String] = [:]
        for (portName, value) in try top["serial"]?.openMap() ?? [] {
            guard ConfigSyntax.isID(portName) else {
                throw value.keyError("bad serial port name \"\(portName)\" (use lowercase letters, digits and \"-\")")
            }
            let device = try value.string()
            guard device.hasPrefix("/") else { throw value.error("a serial port is a device path such as /dev/ttymxc1, found \"\(device)\"") }
            serial[portName] = device
        }
        return Board(name: name, description: description, gpioBackend: backend, simulatorSocket: simulatorSocket, lines: lines, serialPorts: serial)
    }

    static func folder(of file: String) -> String {
        let url = URL(fileURLWithPath: file)
        return url.deletingLastPathComponent().path
    }
}
