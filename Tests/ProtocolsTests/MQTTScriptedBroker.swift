#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport

/// A scripted fake broker on 127.0.0.1: accepts one client, reads MQTT packets, and sends
/// exactly what the test tells it to. Lets a test see the client's wire behaviour (CONNECT
/// fields, how many PUBLISH packets are in flight) that a real broker hides.
final class MQTTScriptedBroker: @unchecked Sendable {
    struct Packet {
        var type: UInt8          // high nibble of the fixed header
        var flags: UInt8         // low nibble
        var body: [UInt8]

        /// Packet identifier of a QoS > 0 PUBLISH.
        var publishID: UInt16? {
            guard type == 3, (flags >> 1) & 3 > 0, body.count >= 2 else { return nil }
            let topicLength = Int(body[0]) << 8 | Int(body[1])
            guard body.count >= 2 + topicLength + 2 else { return nil }
            return UInt16(body[2 + topicLength]) << 8 | UInt16(body[3 + topicLength])
        }

        /// Payload of a PUBLISH.
        var publishPayload: [UInt8] {
            let topicLength = Int(body[0]) << 8 | Int(body[1])
            let start = 2 + topicLength + ((flags >> 1) & 3 > 0 ? 2 : 0)
            return Array(body[start...])
        }
    }

    let port: Int
    private let listener: Int32
    private var connection: Int32 = -1
    private var buffer: [UInt8] = []

    init() throws {
        (listener, port) = try Loopback.listener(backlog: 4, reuseAddress: true)
    }

    deinit {
        if connection >= 0 { close(connection) }
        close(listener)
    }

    /// Accepts the client's connection, waiting at most `timeout` (without blocking a
    /// cooperative thread: polls every 5 ms).
    func accept(timeout: Duration = .seconds(5)) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if ready(listener) {
                connection = Glibc.accept(listener, nil, nil)
                return connection >= 0
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// The next complete packet, or nil if none arrives within `timeout`.
    func read(timeout: Duration = .seconds(5)) async -> Packet? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let packet = takePacket() { return packet }
            if ready(connection) {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = recv(connection, &chunk, chunk.count, 0)
                guard n > 0 else { return nil }
                buffer += chunk[0..<n]
                continue
            }
            guard clock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Every packet that arrives until none has come for `quiet`.
    func readAll(quiet: Duration = .milliseconds(150)) async -> [Packet] {
        var packets: [Packet] = []
        while let p = await read(timeout: quiet) { packets.append(p) }
        return packets
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func sendConnack() { send([0x20, 0x02, 0x00, 0x00]) }
    func sendPuback(_ id: UInt16) { send([0x40, 0x02, UInt8(id >> 8), UInt8(id & 0xFF)]) }

    private func takePacket() -> Packet? {
        guard buffer.count >= 2 else { return nil }
        var length = 0, multiplier = 1, index = 1
        while true {
            guard index < buffer.count else { return nil }
            let byte = Int(buffer[index])
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if byte & 0x80 == 0 { break }
        }
        guard buffer.count >= index + length else { return nil }
        let packet = Packet(type: buffer[0] >> 4, flags: buffer[0] & 0x0F, body: Array(buffer[index..<(index + length)]))
        buffer.removeFirst(index + length)
        return packet
    }

    /// Whether `fd` is readable now (poll with timeout 0).
    private func ready(_ fd: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) > 0
    }
}
