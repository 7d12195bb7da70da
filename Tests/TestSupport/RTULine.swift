#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A simulated RS-485 line with real line time: `Benchmarks/peers/rtuline.c` (two pty pairs,
/// bytes delivered one character time apart at `baud`, t3.5 on every change of talker), built
/// with `cc` into the scratch folder on first use. The master (the agent) opens `masterPath`,
/// the simulator `slavePath`. Killed on release.
public final class RTULine: @unchecked Sendable {
    public let masterPath: String
    public let slavePath: String
    private let child: ChildProcess
    private let scratch = ScratchDir("rtuline")

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(baud: Int = 19200) throws {
        let source = BuildProducts.packageRoot.appendingPathComponent("Benchmarks/peers/rtuline.c").path
        let binary = scratch.file("rtuline")
        let cc = which("cc") ?? which("gcc") ?? "/usr/bin/cc"
        let built = try runCommand(cc, ["-O2", "-o", binary, source], timeout: .seconds(60))
        guard built.status == 0 else { throw Failure(description: "cc rtuline.c: \(built.stderr)") }
        let child = try ChildProcess(binary, ["\(baud)"])
        var ready: [Substring] = []
        Wait.until(timeout: .seconds(5)) {
            ready = child.stdout.split(separator: "\n").first { $0.hasPrefix("line ready") }?.split(separator: " ") ?? []
            return ready.count == 4 || !child.isRunning
        }
        guard ready.count == 4 else {
            child.kill9()
            throw Failure(description: "rtuline did not start: \(child.stderr)")
        }
        self.child = child
        masterPath = String(ready[2])
        slavePath = String(ready[3])
    }

    public func stop() { child.kill9() }
    deinit { child.kill9() }
}
