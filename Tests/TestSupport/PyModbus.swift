#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// An independent Modbus TCP server for tests: pymodbus (3.16) run by `python3` from a small
/// script written into a scratch folder, bound to 127.0.0.1 on a free port, serving one unit id.
///
/// pymodbus's `ModbusSequentialDataBlock(1, values)` serves protocol address 0, so `coils[0]` is
/// coil 0 on the wire, as everywhere else here. Killed on `stop()` or release.
public final class PyModbusServer: @unchecked Sendable {
    public let port: Int
    public let unit: UInt8
    private let child: ChildProcess
    private let scratch: ScratchDir

    /// python3 is missing or the server did not start listening.
    public enum Failure: Error, CustomStringConvertible {
        case pythonMissing
        case notListening(stderr: String)
        public var description: String {
            switch self {
            case .pythonMissing: return "python3 not found on PATH"
            case let .notListening(stderr): return "pymodbus server did not start listening: \(stderr.suffix(2000))"
            }
        }
    }

    /// Starts the server with these initial tables and waits (bounded) until it accepts connections.
    public init(unit: UInt8 = 17, coils: [Bool], discreteInputs: [Bool], holdingRegisters: [UInt16], inputRegisters: [UInt16],
                timeout: Duration = .seconds(15)) throws {
        guard let python = which("python3") else { throw Failure.pythonMissing }
        func bools(_ v: [Bool]) -> String { "[" + v.map { $0 ? "True" : "False" }.joined(separator: ", ") + "]" }
        func words(_ v: [UInt16]) -> String { "[" + v.map(String.init).joined(separator: ", ") + "]" }
        scratch = ScratchDir("pymodbus")
        let script = scratch.write("server.py", """
        import logging, sys
        logging.disable(logging.WARNING)
        from pymodbus.datastore import ModbusSequentialDataBlock, ModbusDeviceContext, ModbusServerContext
        from pymodbus.server import StartTcpServer
        device = ModbusDeviceContext(
            co=ModbusSequentialDataBlock(1, \(bools(coils))),
            di=ModbusSequentialDataBlock(1, \(bools(discreteInputs))),
            hr=ModbusSequentialDataBlock(1, \(words(holdingRegisters))),
            ir=ModbusSequentialDataBlock(1, \(words(inputRegisters))),
        )
        context = ModbusServerContext(devices={\(unit): device}, single=False)
        StartTcpServer(context=context, address=("127.0.0.1", int(sys.argv[1])))
        """)
        port = Loopback.freePort()
        self.unit = unit
        child = try ChildProcess(python, [script, String(port)])
        guard Wait.until(timeout: timeout, { Loopback.isListening(port: port) || !child.isRunning }), child.isRunning else {
            let err = child.stderr
            child.kill9()
            throw Failure.notListening(stderr: err)
        }
    }

    /// What the server wrote to stderr so far (tracebacks on failure).
    public var stderr: String { child.stderr }

    /// Stops the server (SIGTERM, then SIGKILL after two seconds).
    public func stop() {
        child.signal(SIGTERM)
        if child.waitExit(timeout: .seconds(2)) == nil { child.kill9() }
    }

    deinit { stop() }
}
