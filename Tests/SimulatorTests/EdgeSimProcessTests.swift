#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Protocols
import TestSupport

/// The built `edge-sim` executable, checked by independent tools (mbpoll) and its control socket.
@Suite struct EdgeSimProcessTests {
    @Test func mbpollReadsAndWritesTheSimulator() throws {
        let mbpoll = try #require(which("mbpoll"))
        let sim = try SimProcess()
        #expect(sim.readyLine == "edge-sim ready tcp=127.0.0.1:\(sim.port) control=\(sim.controlPath)")
        let base = ["-m", "tcp", "-0", "-1", "-o", "2", "-p", String(sim.port)]
        // Luminaire input registers 0..5 (0-based references).
        let lamp = try runCommand(mbpoll, base + ["-a", "1", "-r", "0", "-c", "6", "-t", "3", "127.0.0.1"], timeout: .seconds(20))
        #expect(lamp.status == 0)
        let regs = mbpollValues(lamp.stdout)
        #expect(regs.count == 6)
        #expect(Array(regs.prefix(2)) == [100, 600])
        #expect(regs[4] == 0)
        // Bollard discrete inputs: at the bottom.
        let bollard = try runCommand(mbpoll, base + ["-a", "30", "-r", "0", "-c", "6", "-t", "1", "127.0.0.1"], timeout: .seconds(20))
        #expect(mbpollValues(bollard.stdout) == [0, 1, 0, 0, 0, 0])
        // mbpoll writes the setpoint; the simulator shows it (fade 0: level follows at once).
        let write = try runCommand(mbpoll, base + ["-a", "1", "-r", "0", "-t", "4", "127.0.0.1", "40"], timeout: .seconds(20))
        #expect(write.status == 0)
        let state = try sim.get("lamp-01")
        #expect(state["setpoint"] as? Int == 40)
        #expect(state["level"] as? Double == 40)
        #expect(try sim.stats().writes == 1)
        // 1-based references by default: reference 1 is address 0.
        let oneBased = try runCommand(mbpoll, ["-m", "tcp", "-1", "-o", "2", "-p", String(sim.port), "-a", "1", "-r", "1", "-c", "1", "-t", "4", "127.0.0.1"], timeout: .seconds(20))
        #expect(mbpollValues(oneBased.stdout) == [40])
        #expect(sim.stop() == 0)
    }

    @Test func controlSocketCtlAndSignals() throws {
        let sim = try SimProcess()
        let exe = BuildProducts.executable("edge-sim")
        let ok = try runCommand(exe, ["ctl", "--control", sim.controlPath, "set", "bollard-1", "loop", "1"])
        #expect(ok.status == 0)
        #expect(ok.stdout == #"{"ok":true,"device":"bollard-1","signal":"loop","value":"1"}"# + "\n")
        #expect(try sim.get("bollard-1")["loop"] as? Bool == true)
        let refused = try runCommand(exe, ["ctl", "--control", sim.controlPath, "get", "lamp-99"])
        #expect(refused.status == 1)
        #expect(refused.stdout.hasPrefix(#"{"ok":false,"error":"unknown device lamp-99"#))
        let unreachable = try runCommand(exe, ["ctl", "--control", sim.scratch.file("nobody.sock"), "stats"])
        #expect(unreachable.status == 3)
        let usage = try runCommand(exe, ["ctl", "--control", sim.controlPath])
        #expect(usage.status == 64)

        // Modbus client view of a violation, counted in stats.
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: sim.port))
        try client.writeCoils(unit: 30, address: 0, values: [true, false, true])
        let stats = try sim.stats()
        #expect(stats.safetyViolations == 1 && stats.writes == 1)
        #expect(stats.violations.first?.hasSuffix("bollard-1: motor-up energised while the vehicle loop is occupied") == true)

        #expect(sim.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: sim.controlPath))
    }

    @Test func gpioWatchLink() throws {
        let sim = try SimProcess()
        let link = try sim.gpioWatch()
        // One line per GPIO line first, in file order.
        var initial: [String] = []
        for _ in 0..<3 { initial.append(link.readLine() ?? "") }
        #expect(initial == [#"{"line":"presence-a","value":0}"#, #"{"line":"bus-detect-north","value":0}"#, #"{"line":"stopline-north","value":0}"#])
        // A change made by someone else arrives on the link.
        try sim.gpio("bus-detect-north", true)
        #expect(link.readLine() == #"{"line":"bus-detect-north","value":1}"#)
        try sim.gpio("bus-detect-north", true)  // no change, no event
        try sim.gpio("presence-a", true)
        #expect(link.readLine() == #"{"line":"presence-a","value":1}"#)
        // The agent's outputs on the link: no reply, stored, visible in get-gpio.
        try link.send("gpio-out beacon-north 1")
        #expect(link.readLine(timeout: .milliseconds(300)) == nil)
        let lines = try sim.control("get-gpio")["lines"] as? [String: Int]
        #expect(lines == ["presence-a": 1, "bus-detect-north": 1, "stopline-north": 0, "beacon-north": 1])
        // A second link sees the first one's output change.
        let second = try sim.gpioWatch()
        for _ in 0..<4 { _ = second.readLine() }
        try link.send("gpio-out beacon-north 0")
        #expect(second.readLine() == #"{"line":"beacon-north","value":0}"#)
        #expect(sim.stop() == 0)
    }

    @Test func servesRTUOnAPtyGivenOnTheCommandLine() throws {
        let dir = ScratchDir("edge-sim-rtu")
        let pair = try SocatPair(in: dir)
        let sim = try SimProcess(rtu: pair.pathA)
        #expect(sim.readyLine.contains(" rtu=\(pair.pathA) "))
        let rtu = try ModbusClient(bus: "rs485-1", transport: .rtu(device: pair.pathB, baud: 19200, parity: .even, dataBits: 8, stopBits: 1),
                                   responseTimeout: .milliseconds(500))
        try rtu.writeRegister(unit: 2, address: 0, value: 25)
        // The same devices on both buses.
        let tcp = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: sim.port))
        #expect(try tcp.readHoldingRegisters(unit: 2, address: 0, count: 1) == [25])
        #expect(try rtu.readInputRegisters(unit: 2, address: 0, count: 2) == [25, 150])
        #expect(sim.stop() == 0)
    }

    @Test func badConfigExits78WithFileLineAndKey() throws {
        let dir = ScratchDir("edge-sim-bad")
        let file = dir.write("bad.yaml", "tick: 10ms\nunits:\n  1: {type: ref-luminaire, name: lamp-01, rated_w: lots}\n")
        let result = try runCommand(BuildProducts.executable("edge-sim"), ["--config", file])
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(file):3: units.1.rated_w: expected a non-negative number"))
        #expect(result.stdout.isEmpty)
    }
}
