#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Protocols
import TestSupport

/// The RTU client after a garbled answer, against a scripted device on the far end of a socat
/// pty pair: the rest of a broken frame, still arriving, is never taken for the next answer.
@Suite struct ModbusRTUResyncTests {
    static func crc16(_ bytes: [UInt8]) -> [UInt8] {
        var crc: UInt16 = 0xFFFF
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return [UInt8(crc & 0xFF), UInt8(crc >> 8)]
    }

    /// An FC3 answer of unit 1 with one register.
    static func answer(_ value: UInt16) -> [UInt8] {
        let body: [UInt8] = [1, 3, 2, UInt8(value >> 8), UInt8(value & 0xFF)]
        return body + crc16(body)
    }

    @Test func theTailOfABrokenAnswerIsDroppedNotReadAsTheNextAnswer() throws {
        let dir = ScratchDir("modbus-resync")
        let pair = try SocatPair(in: dir)
        let device = open(pair.pathA, O_RDWR | O_NOCTTY)
        try #require(device >= 0)
        defer { close(device) }
        var tio = termios()
        tcgetattr(device, &tio)
        cfmakeraw(&tio)
        tcsetattr(device, TCSANOW, &tio)
        // The device: request 1 is answered by a frame with a bad CRC and, 5 ms later, the rest of
        // what was on the wire (a well-formed answer carrying 111); request 2 is answered with 222.
        let served = DispatchSemaphore(value: 0)
        let script = Thread {
            var buffer = [UInt8](repeating: 0, count: 64)
            for request in 1...2 {
                var got = 0
                while got < 8 {
                    let n = buffer.withUnsafeMutableBytes { read(device, $0.baseAddress! + got, 8 - got) }
                    if n <= 0 { return }
                    got += n
                }
                if request == 1 {
                    var broken = Self.answer(7)
                    broken[broken.count - 1] ^= 0xFF
                    _ = broken.withUnsafeBytes { write(device, $0.baseAddress, $0.count) }
                    Thread.sleep(forTimeInterval: 0.005)
                    let tail = Self.answer(111)
                    _ = tail.withUnsafeBytes { write(device, $0.baseAddress, $0.count) }
                } else {
                    let good = Self.answer(222)
                    _ = good.withUnsafeBytes { write(device, $0.baseAddress, $0.count) }
                }
                served.signal()
            }
        }
        script.start()
        let client = try ModbusClient(bus: "rs485-1", transport: .rtu(device: pair.pathB, baud: 19200, parity: .even, dataBits: 8, stopBits: 1),
                                      responseTimeout: .milliseconds(300))
        let first = try #require(throws: ModbusError.self) { try client.readHoldingRegisters(unit: 1, address: 0, count: 1) }
        #expect(first.kind == .invalidResponse, "\(first)")
        #expect(served.wait(timeout: .now() + 2) == .success)
        Thread.sleep(forTimeInterval: 0.05)   // the tail has arrived by now
        #expect(try client.readHoldingRegisters(unit: 1, address: 0, count: 1) == [222])
        #expect(served.wait(timeout: .now() + 2) == .success)
        client.close()
    }
}
