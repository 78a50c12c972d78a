import Foundation
import Testing
import TunnelTLS

@testable import TunnelAudit

/// A directory under /tmp that is removed with everything in it when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/tunnel-audit-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: created)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func sub(_ name: String) -> String { "\(path)/\(name)" }
}

/// A caller-driven clock: every `next()` is one millisecond later.
struct TestClock {
    /// 2026-03-01T10:00:00Z
    static let start = Date(timeIntervalSince1970: 1_772_359_200)
    var now: Date

    init(_ now: Date = TestClock.start) { self.now = now }

    mutating func next(_ seconds: TimeInterval = 0.001) -> Date {
        now += seconds
        return now
    }
}

/// One audit log directory under test, with its key and clock.
final class Fixture {
    let temporary: TemporaryDirectory
    let key: AuditSigningKey
    var clock = TestClock()
    var directory: String { temporary.sub("log") }

    init() throws {
        temporary = try TemporaryDirectory()
        key = try AuditSigningKey.generate()
    }

    func open(_ policy: AuditLogConfiguration = AuditLogConfiguration()) throws -> AuditLog {
        try AuditLog(directory: directory, signingKey: key, policy: policy, now: clock.next())
    }

    /// Appends `count` ordinary records.
    func appendEvents(_ log: AuditLog, count: Int, durable: Bool = false) throws {
        for index in 0..<count {
            try log.append(
                type: "request", fields: ["user": "alice", "n": .int(Int64(index)), "path": "/api/v1/nodes"],
                now: clock.next(), durable: durable)
        }
    }

    /// A closed log of several segments: 4 KiB segments, a checkpoint every 10 records.
    func closedLog(records: Int = 120) throws {
        let log = try open(AuditLogConfiguration(maxSegmentBytes: 4096, checkpointEvery: 10))
        try appendEvents(log, count: records)
        try log.close(now: clock.next())
    }

    func verify(requireClosed: Bool = false) -> AuditReport {
        AuditVerifier.verify(directory: directory, publicKey: key.publicKey, requireClosed: requireClosed)
    }

    var segments: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("audit-") && $0.hasSuffix(".jsonl") }.sorted()
    }

    func path(_ segment: String) -> String { "\(directory)/\(segment)" }

    func lines(_ segment: String) throws -> [String] {
        try String(contentsOfFile: path(segment), encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false
        ).dropLast().map(String.init)
    }

    func write(_ segment: String, lines: [String]) throws {
        try (lines.map { $0 + "\n" }.joined()).write(toFile: path(segment), atomically: false, encoding: .utf8)
    }

    func seq(of line: String) -> UInt64 {
        UInt64(line.firstMatch(of: /"seq":(\d+)/)!.1)!
    }

    /// Rewrites the chain from `segment` line `fromLine` (1-based) on, as someone holding `signer`
    /// could: renumbers seq, recomputes prev, segment_start links and every later checkpoint,
    /// signing them with `signer` under the key id `claimedKeyID` (its own by default).
    func forgeChain(from segment: String, line fromLine: Int, signer: AuditSigningKey, claimedKeyID: String? = nil)
        throws
    {
        var lastSeq: UInt64 = 0
        var lastHash = String(repeating: "0", count: 64)
        var rewriting = false
        for name in segments {
            var lines = try lines(name)
            for index in lines.indices {
                if name == segment && index + 1 == fromLine { rewriting = true }
                if rewriting {
                    var line = lines[index]
                    line.replace(/"prev":"[0-9a-f]{64}"/, with: "\"prev\":\"\(lastHash)\"")
                    line.replace(/"seq":\d+/, with: "\"seq\":\(lastSeq + 1)")
                    line.replace(/"previous_seq":\d+/, with: "\"previous_seq\":\(lastSeq)")
                    line.replace(/"previous_hash":"[0-9a-f]{64}"/, with: "\"previous_hash\":\"\(lastHash)\"")
                    if line.contains("\"type\":\"checkpoint\"") {
                        let reason = String(line.firstMatch(of: /"reason":"([a-z]+)"/)!.1)
                        let message = RecordFormat.checkpointMessage(
                            signedSeq: lastSeq, signedHash: lastHash.utf8, file: name, reason: reason.utf8)
                        let signature = Data(try signer.sign(message)).base64EncodedString()
                        line.replace(/"signed_seq":\d+/, with: "\"signed_seq\":\(lastSeq)")
                        line.replace(/"signed_hash":"[0-9a-f]{64}"/, with: "\"signed_hash\":\"\(lastHash)\"")
                        line.replace(/"key_id":"[0-9a-f]{16}"/, with: "\"key_id\":\"\(claimedKeyID ?? signer.keyID)\"")
                        line.replace(/"signature":"[^"]*"/, with: "\"signature\":\"\(signature)\"")
                    }
                    lines[index] = line
                }
                lastSeq = seq(of: lines[index])
                lastHash = Hex.encode(SHA256.hash(Array(lines[index].utf8)))
            }
            if rewriting { try write(name, lines: lines) }
        }
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
}
