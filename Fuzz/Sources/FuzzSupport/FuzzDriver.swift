import CLibFuzzer
import Foundation

/// The `main` of every fuzz target. SwiftPM links an executable with `main = <Target>_main`, so
/// each target defines `<Target>_main` and calls `FuzzDriver.main`, which either writes the
/// target's seed corpus (environment `EDGE_FUZZ_WRITE_SEEDS=DIR`, then exits) or hands the
/// command line to libFuzzer (`LLVMFuzzerRunDriver`: every libFuzzer flag works as usual).
public enum FuzzDriver {
    /// A libFuzzer test callback (`LLVMFuzzerTestOneInput`'s C shape).
    public typealias Callback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    public static func main(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        seeds: () throws -> [Seed], callback: Callback
    ) -> CInt {
        if let dir = ProcessInfo.processInfo.environment["EDGE_FUZZ_WRITE_SEEDS"] {
            do {
                let written = try Seed.write(try seeds(), to: dir)
                FileHandle.standardError.write(Data("wrote \(written) seeds to \(dir)\n".utf8))
                return 0
            } catch {
                FileHandle.standardError.write(Data("cannot write seeds to \(dir): \(error)\n".utf8))
                return 1
            }
        }
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, callback)
    }

    /// With `EDGE_FUZZ_EXPLAIN=1`, each target says what became of each input (on stderr):
    /// for reading a crash artifact or checking that seeds go where they should.
    public static let explaining = ProcessInfo.processInfo.environment["EDGE_FUZZ_EXPLAIN"] == "1"

    public static func explain(_ message: @autoclosure () -> String) {
        if explaining { FileHandle.standardError.write(Data((message() + "\n").utf8)) }
    }

    /// Calls `body` with the input as a buffer (libFuzzer may pass a null pointer for an empty input).
    public static func withInput(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: (UnsafeBufferPointer<UInt8>) -> CInt) -> CInt {
        guard let data, size > 0 else { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        return body(UnsafeBufferPointer(start: data, count: size))
    }
}

/// One seed-corpus file: a stable name and its bytes.
public struct Seed: Sendable {
    public var name: String
    public var bytes: [UInt8]

    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    public init(_ name: String, _ text: String) {
        self.init(name, Array(text.utf8))
    }

    /// Writes the seeds as `DIR/seed-<name>` (only files whose bytes changed); returns how many.
    static func write(_ seeds: [Seed], to dir: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var names: Set<String> = []
        for seed in seeds {
            precondition(names.insert(seed.name).inserted, "seed name \(seed.name) used twice")
            let path = dir + "/seed-" + seed.name
            if FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) != seed.bytes {
                try Data(seed.bytes).write(to: URL(fileURLWithPath: path))
            }
        }
        return seeds.count
    }
}

/// An invariant of the code under test that the input broke: the fuzzer records it as a crash.
public func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition {
        FileHandle.standardError.write(Data("INVARIANT BROKEN (\(file):\(line)): \(message())\n".utf8))
        abort()
    }
}
