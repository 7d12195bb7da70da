#if canImport(Glibc)
import EdgeRuntime
import Glibc
#endif
import Drivers
import Logging
import Testing
import TestSupport

/// A fake field simulator speaking the GPIO link protocol on a unix stream socket, driven
/// step by step from the test thread (every wait is bounded).
final class FakeGPIOSimulator {
    let path: String
    private var listenFD: Int32 = -1
    private var conn: Int32 = -1
    private var buffer: [UInt8] = []

    init(path: String) throws {
        self.path = path
        try listen()
    }

    func listen() throws {
        unlink(path)
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0, "bind \(path): errno \(errno)")
        try #require(Glibc.listen(listenFD, 4) == 0)
    }

    /// Waits (bounded) for the agent to connect.
    func accept(timeout: Int32 = 5000) -> Bool {
        var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeout) == 1 else { return false }
        conn = Glibc.accept(listenFD, nil, nil)
        buffer = []
        return conn >= 0
    }

    /// The next text line from the agent, or nil after `timeout` ms.
    func readLine(timeout: Int32 = 5000) -> String? {
        let deadline = MonotonicInstant.now() + .milliseconds(Int64(timeout))
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline - MonotonicInstant.now()
            guard left > .zero else { return nil }
            var p = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)) == 1 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 1024)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(conn, $0.baseAddress, $0.count) }
            guard n > 0 else { return nil }
            buffer += chunk[0..<n]
        }
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Drops the connection, as a simulator restart does.
    func dropConnection() {
        if conn >= 0 { close(conn) }
        conn = -1
    }

    func shutdown() {
        dropConnection()
        if listenFD >= 0 { close(listenFD) }
        listenFD = -1
        unlink(path)
    }

    deinit { shutdown() }
}

@Suite(.serialized)
struct GPIOSimulatorLinkTests {
    let logger = Logger(label: "test.gpio.link")

    @Test func valuesBecomeEdgesOutputsAreSentAndTheLinkSurvivesASimulatorRestart() throws {
        let dir = ScratchDir("gpio-link")
        let sim = try FakeGPIOSimulator(path: dir.file("sim.sock"))
        let gpio = SimulatorLinkGPIOBackend(socketPath: sim.path, reconnectDelay: .milliseconds(50), logger: logger)
        defer { gpio.stop() }
        let log = GPIOEdgeLog()

        let presence = try gpio.openInput(name: "presence-a", chip: "sim", offset: 0, activeLow: false, debounce: .zero)
        _ = try gpio.openInput(name: "stopline-north", chip: "sim", offset: 1, activeLow: true, debounce: .zero)
        let beacon = try gpio.openOutput(name: "beacon", chip: "sim", offset: 2, activeLow: false, initial: false)
        try gpio.startEvents(log.handler)

        #expect(sim.accept())
        #expect(sim.readLine() == "gpio-watch")
        #expect(sim.readLine() == "gpio-out beacon 0")
        sim.send("{\"line\":\"presence-a\",\"value\":0}\n{\"line\":\"stopline-north\",\"value\":1}\n{\"line\":\"other\",\"value\":1}\n")
        #expect(Wait.until(timeout: .seconds(5)) { log.all.count == 2 })
        #expect(log.of("presence-a").first.map { !$0.value && $0.initial } == true)
        #expect(log.of("stopline-north").first.map { !$0.value && $0.initial } == true)  // active-low: wire high = inactive
        #expect(try presence.read() == false)

        let before = MonotonicInstant.now()
        sim.send("{\"line\":\"presence-a\",\"value\":1}\n")
        #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(2)) { log.of("presence-a").count == 2 })
        let edge = try #require(log.of("presence-a").last)
        #expect(edge.value && !edge.initial && edge.timestamp >= before && edge.timestamp <= MonotonicInstant.now())
        #expect(try presence.read() == true)

        try beacon.write(true)
        #expect(sim.readLine() == "gpio-out beacon 1")

        // The simulator restarts: the agent reconnects, re-watches, re-sends its outputs.
        sim.dropConnection()
        #expect(sim.accept())
        #expect(sim.readLine() == "gpio-watch")
        #expect(sim.readLine() == "gpio-out beacon 1")
        sim.send("{\"line\":\"presence-a\",\"value\":1}\n{\"line\":\"stopline-north\",\"value\":0}\n")
        #expect(Wait.until(timeout: .seconds(5)) { log.of("stopline-north").count == 2 })
        #expect(log.of("stopline-north").last?.value == true)
        #expect(log.of("presence-a").count == 2, "an unchanged level after reconnection is no edge")
        #expect(Wait.until(timeout: .seconds(5)) { gpio.isConnected })
    }

    @Test func withoutASimulatorReadsAndWritesSaySoAndItConnectsWhenItComes() throws {
        let dir = ScratchDir("gpio-link")
        let path = dir.file("late.sock")
        let gpio = SimulatorLinkGPIOBackend(socketPath: path, reconnectDelay: .milliseconds(30), logger: logger)
        defer { gpio.stop() }
        let input = try gpio.openInput(name: "presence-a", chip: "sim", offset: 0, activeLow: false, debounce: .milliseconds(5))
        let output = try gpio.openOutput(name: "beacon", chip: "sim", offset: 1, activeLow: true, initial: false)
        let read = #expect(throws: GPIOError.self) { _ = try input.read() }
        #expect(read?.kind == .simulatorUnreachable)
        #expect(read?.description.contains(path) == true)
        let write = #expect(throws: GPIOError.self) { try output.write(true) }
        #expect(write?.kind == .simulatorUnreachable)

        let sim = try FakeGPIOSimulator(path: path)
        #expect(sim.accept())
        #expect(sim.readLine() == "gpio-watch")
        #expect(sim.readLine() == "gpio-out beacon 0")  // the write made while down, active-low applied
        sim.send("{\"line\":\"presence-a\",\"value\":true}\n")
        #expect(Wait.until(timeout: .seconds(5)) { (try? input.read()) == true })
    }
}
