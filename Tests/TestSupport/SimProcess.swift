#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A running `edge-sim` process for end-to-end tests: started from the built executable with a
/// config written to a scratch folder, Modbus TCP on a free 127.0.0.1 port (port 0, read back from
/// the ready line) and a scratch control socket. Stopped with SIGTERM by `stop()`, killed on release.
///
/// ```swift
/// let sim = try SimProcess()                       // reference devices, fast bollard
/// let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: sim.port))
/// try sim.set("pir-01", "presence", 1)
/// let lamp = try sim.get("lamp-01")                // ["level": 100, "power_w": 60, ...]
/// #expect(try sim.stats().safetyViolations == 0)
/// ```
public final class SimProcess: @unchecked Sendable {
    /// Modbus TCP port on 127.0.0.1.
    public let port: Int
    /// The control socket path.
    public let controlPath: String
    /// The line edge-sim printed when ready (`edge-sim ready tcp=... control=...`).
    public let readyLine: String
    /// The scratch folder (config, control socket); removed on release.
    public let scratch: ScratchDir
    private let child: ChildProcess

    /// A control command was refused (`{"ok":false,...}`) or the reply was not JSON.
    public struct ControlFailure: Error, CustomStringConvertible {
        public var command: String
        public var reply: String
        public var description: String { "edge-sim refused \"\(command)\": \(reply)" }
    }

    /// edge-sim did not become ready.
    public struct StartFailure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// What `stats` reports.
    public struct Stats: Sendable, Equatable {
        public var safetyViolations: Int
        public var violations: [String]
        public var writes: Int
    }

    /// The reference field of CONTRACT.md section 2 (as Boards/sim-field.yaml: lamp-01..04 on
    /// units 1-4, pir-01 on 20, bollard-1 on 30, junction on 40; GPIO lines presence-a,
    /// bus-detect-north, stopline-north), with travel and acknowledgement times for tests.
    public static func referenceConfig(travelUp: String = "400ms", travelDown: String = "250ms", ackDelay: String = "100ms",
                                       ratedW: Int = 60, tick: String = "10ms") -> String {
        """
        tick: \(tick)
        units:
          1:  {type: ref-luminaire, name: lamp-01, rated_w: \(ratedW)}
          2:  {type: ref-luminaire, name: lamp-02, rated_w: \(ratedW)}
          3:  {type: ref-luminaire, name: lamp-03, rated_w: \(ratedW)}
          4:  {type: ref-luminaire, name: lamp-04, rated_w: \(ratedW)}
          20: {type: ref-presence, name: pir-01}
          30: {type: ref-bollard, name: bollard-1, travel_up: \(travelUp), travel_down: \(travelDown)}
          40: {type: ref-signal-io, name: junction, ack_delay: \(ackDelay)}
        gpio:
          presence-a: input
          bus-detect-north: input
          stopline-north: input
        """
    }

    /// Starts edge-sim on `config` (YAML; its `tcp` and `control` are overridden) and waits for the
    /// ready line. `rtu` adds a Modbus RTU server on that serial device or pty path; `requestLog`
    /// makes it log every request and control `set` to that file (`edge-sim --request-log`).
    public init(config: String = SimProcess.referenceConfig(), rtu: String? = nil, requestLog: String? = nil, timeout: Duration = .seconds(15)) throws {
        scratch = ScratchDir("edge-sim")
        let file = scratch.write("sim.yaml", config)
        controlPath = scratch.file("control.sock")
        var arguments = ["--config", file, "--tcp", "127.0.0.1:0", "--control", controlPath]
        if let rtu { arguments += ["--rtu", rtu] }
        if let requestLog { arguments += ["--request-log", requestLog] }
        let executable = BuildProducts.executable("edge-sim")
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw StartFailure(message: "edge-sim not built at \(executable)")
        }
        let process = try ChildProcess(executable, arguments)
        var ready: String?
        Wait.until(timeout: timeout) {
            ready = process.stdout.split(separator: "\n").first { $0.hasPrefix("edge-sim ready") }.map(String.init)
            return ready != nil || !process.isRunning
        }
        guard let ready, let portText = ready.split(separator: " ").first(where: { $0.hasPrefix("tcp=") })?.split(separator: ":").last,
              let port = Int(portText) else {
            let err = process.stderr
            process.kill9()
            throw StartFailure(message: "edge-sim did not become ready: \(err.suffix(3000))")
        }
        child = process
        readyLine = ready
        self.port = port
    }

    /// Whether the process still runs.
    public var isRunning: Bool { child.isRunning }
    /// What edge-sim logged so far.
    public var stderr: String { child.stderr }
    /// The process id (for signals).
    public var pid: Int32 { child.pid }

    /// Sends one control command and returns the raw reply line.
    public func controlLine(_ command: String, timeout: Duration = .seconds(5)) throws -> String {
        let link = try SimControlLink(path: controlPath, timeout: timeout)
        try link.send(command)
        guard let line = link.readLine(timeout: timeout) else { throw ControlFailure(command: command, reply: "(no reply)") }
        return line
    }

    /// Sends one control command; returns the reply object, throwing `ControlFailure` on `ok:false`.
    @discardableResult
    public func control(_ command: String) throws -> [String: Any] {
        let line = try controlLine(command)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw ControlFailure(command: command, reply: line)
        }
        guard object["ok"] as? Bool == true else { throw ControlFailure(command: command, reply: line) }
        return object
    }

    /// `get <device>`: the device's state (setpoint, level, power_w, position, height, ack, ...).
    public func get(_ device: String) throws -> [String: Any] { try control("get \(device)") }

    /// `set <device> <signal> <value>`.
    public func set(_ device: String, _ signal: String, _ value: Int) throws { try control("set \(device) \(signal) \(value)") }

    /// `gpio <line> 0|1`.
    public func gpio(_ line: String, _ value: Bool) throws { try control("gpio \(line) \(value ? 1 : 0)") }

    /// `stats`.
    public func stats() throws -> Stats {
        let o = try control("stats")
        return Stats(safetyViolations: o["safety_violations"] as? Int ?? -1, violations: o["violations"] as? [String] ?? [],
                     writes: o["writes"] as? Int ?? -1)
    }

    /// Opens a GPIO link (`gpio-watch`), as the agent's simulated GPIO backend does.
    public func gpioWatch(timeout: Duration = .seconds(5)) throws -> SimControlLink {
        let link = try SimControlLink(path: controlPath, timeout: timeout)
        try link.send("gpio-watch")
        return link
    }

    /// Stops edge-sim with SIGTERM; returns its exit status (nil if it had to be killed).
    @discardableResult
    public func stop(timeout: Duration = .seconds(5)) -> Int32? {
        guard child.isRunning else { return child.terminationStatus }
        child.signal(SIGTERM)
        if let status = child.waitExit(timeout: timeout) { return status }
        child.kill9()
        return nil
    }

    deinit { if child.isRunning { child.kill9() } }
}

/// A connection to an edge-sim control socket that sends lines and reads reply/event lines with
/// bounded waits (for `gpio-watch` links and one-off commands).
public final class SimControlLink: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// The socket could not be reached or written.
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(path: String, timeout: Duration = .seconds(5)) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(message: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(message: "socket(): errno \(errno)") }
        let rc = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(message: "cannot connect to \(path): \(String(cString: strerror(e)))")
        }
    }

    deinit { close(fd) }

    /// Sends `line` and a newline.
    public func send(_ line: String) throws {
        let out = Array((line + "\n").utf8)
        let n = out.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n == out.count else { throw Failure(message: "send failed: errno \(errno)") }
    }

    /// The next line received, or nil when none arrives within `timeout` or the peer closed.
    public func readLine(timeout: Duration = .seconds(5)) -> String? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline - clock.now
            guard left > .zero else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(clamping: max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&p, 1, ms) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// The next line decoded as a JSON object (nil on timeout or non-JSON).
    public func readObject(timeout: Duration = .seconds(5)) -> [String: Any]? {
        guard let line = readLine(timeout: timeout) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}
