import Foundation
import TunnelAudit

/// Writes N records (default 1,000,000; not durable; a checkpoint every 1000) into a temporary
/// directory, closes the log, reopens it once (recovery scan), then verifies it, printing the
/// time of each phase.
///
/// Usage: audit-bench [records]

let count = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000_000
var template = Array("/tmp/audit-bench-XXXXXX".utf8CString)
guard let created = mkdtemp(&template) else { fatalError("could not create a temporary directory") }
let directory = String(cString: created)
defer {
    if ProcessInfo.processInfo.environment["KEEP"] == nil {
        try? FileManager.default.removeItem(atPath: directory)
    } else {
        print(directory)
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

let key = try AuditSigningKey.generate()
// The public key beside the log, where `tunnel audit verify DIR` looks for it (KEEP=1 runs).
try Data(key.publicKey.pem()).write(to: URL(fileURLWithPath: "\(directory)/\(AuditSigningKey.publicKeyFileName)"))
// A fixed noon start and 1 ms per record: a million records stay within one UTC day.
var now = Date(timeIntervalSince1970: 1_767_268_800)
let log = try AuditLog(
    directory: directory, signingKey: key, policy: AuditLogConfiguration(checkpointEvery: 1000), now: now)
let clock = ContinuousClock()

let writeStart = clock.now
for index in 0..<count {
    now += 0.001
    let stream = Int64(index / 2)
    let fields: [String: AuditValue] =
        index % 2 == 0
        ? [
            "session": .string("sess-\(stream / 8)"), "stream": .int(stream), "node": "edge-0017",
            "service": "ssh", "operator": "alice@example.com", "peer": "203.0.113.7:51234",
        ]
        : [
            "session": .string("sess-\(stream / 8)"), "stream": .int(stream), "bytes_in": .int(stream * 31),
            "bytes_out": .int(stream * 17), "reason": "fin",
        ]
    try log.append(type: index % 2 == 0 ? "stream_open" : "stream_close", fields: fields, now: now, durable: false)
}
try log.close(now: now)
let writeSeconds = seconds(clock.now - writeStart)

let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }
let bytes = try files.reduce(0) { total, name in
    total + ((try FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")[.size] as? Int) ?? 0)
}

// Reopening checks the whole newest segment before appending its recovery record.
let newest = files.sorted().last!
let newestBytes = (try FileManager.default.attributesOfItem(atPath: "\(directory)/\(newest)")[.size] as? Int) ?? 0
let reopenStart = clock.now
try AuditLog(directory: directory, signingKey: key, now: now).close(now: now)
let reopenSeconds = seconds(clock.now - reopenStart)

let verifyStart = clock.now
let report = AuditVerifier.verify(directory: directory, publicKey: key.publicKey, requireClosed: true)
let verifySeconds = seconds(clock.now - verifyStart)

print(
    "wrote  \(count) records (\(bytes / 1_048_576) MiB, \(files.count) segment(s)) in \(String(format: "%.2f", writeSeconds)) s: \(Int(Double(count) / writeSeconds)) records/s"
)
print(
    "reopened (recovery checks the \(newestBytes / 1_048_576) MiB newest segment) in \(String(format: "%.2f", reopenSeconds)) s"
)
print(
    "verified \(report.records) records in \(String(format: "%.2f", verifySeconds)) s: \(Int(Double(report.records) / verifySeconds)) records/s"
)
print(report.summary)
if !report.isValid { exit(1) }
