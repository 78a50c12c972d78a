import Foundation
import MultiplexFuzzing
import Testing

/// Replays the committed seed corpus and every crasher the fuzzers ever found, so a fixed
/// finding stays fixed. New crashers land in `Fuzz/crashers/` through `scripts/fuzz.sh`.
@Suite("Fuzz corpus replay")
struct FuzzReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ target: String) -> [URL] {
        ["corpus", "crashers"].flatMap { kind in
            let directory = fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
        }
    }

    @Test("the committed frame-decoder inputs keep every invariant")
    func frames() throws {
        let files = Self.inputs("frames")
        #expect(files.count >= 8, "the seed corpus is missing from \(Self.fuzzDirectory.path)")
        for file in files {
            let violation = FuzzHarness.decodeFrames(Array(try Data(contentsOf: file)))
            #expect(violation == nil, "\(file.lastPathComponent): \(violation ?? "")")
        }
    }

    @Test("the committed session inputs keep every invariant")
    func sessions() throws {
        let files = Self.inputs("session")
        #expect(files.count >= 8, "the seed corpus is missing from \(Self.fuzzDirectory.path)")
        for file in files {
            let violation = FuzzHarness.driveSession(Array(try Data(contentsOf: file)))
            #expect(violation == nil, "\(file.lastPathComponent): \(violation ?? "")")
        }
    }
}
