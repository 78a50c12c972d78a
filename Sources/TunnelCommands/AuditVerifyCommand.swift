import ArgumentParser
import Foundation
import TunnelAudit
import TunnelText

public struct AuditVerifyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify audit logs (directories or exports), offline; names the first bad record.",
        discussion: "Take the public keys (or their key ids) from somewhere other than the machines being audited. "
            + "A cluster's logs: give each replica's directory, or one export holding them, and each replica's --key.")
    @Argument(help: "Audit directories or bundles from `tunnel audit export`; several for a cluster's replicas")
    var paths: [String] = [AuditReader.defaultDirectory]
    @Option(
        help:
            "An audit public key (default: audit-key.pub.pem beside each log); repeat it for several logs: each is checked with the key its checkpoints name"
    ) var key: [String] = []
    @Flag(help: "Also require each log to end with a clean close (a stopped gateway's log)") var closed = false
    @OptionGroup var output: OutputOptions
    /// A valid chain that no checkpoint signs: neither a failure (1) nor OK (0).
    static let unsignedExitCode: Int32 = 3
    public init() {}

    public func run() throws {
        var unpacked: [String] = []
        defer { for directory in unpacked { try? FileManager.default.removeItem(atPath: directory) } }
        var logs: [AuditLogs.Log] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CommandFailure.usage(
                    "\(path) does not exist; give an audit directory or a bundle from `tunnel audit export`", .localFile
                )
            }
            if isDirectory.boolValue {
                logs.append(AuditLogs.Log(name: path, directory: path, isExcerpt: false))
                continue
            }
            let directory = try AuditBundle.temporaryDirectory()
            unpacked.append(directory)
            try AuditBundle.unpackChecked(bundle: path, into: directory)
            let inside = AuditLogs.logs(inUnpacked: directory)
            guard !inside.isEmpty else { throw CommandFailure.failed("\(path) holds no audit segments", .auditInvalid) }
            logs += inside.map {
                AuditLogs.Log(
                    name: $0.name.isEmpty ? path : "\(path):\($0.name)", directory: $0.directory, isExcerpt: true)
            }
        }
        let total = logs.reduce(Int64(0)) { sum, log in
            sum + ((try? AuditReader.segments(in: log.directory)) ?? []).reduce(0) { $0 + fileSize($1) }
        }
        let progress = ProgressLine("verifying", total: total, unit: .bytes)
        let results = try AuditLogs.verify(logs, keyFiles: key, requireClosed: closed) { progress.update($0) }
        progress.finish()
        try report(results)
    }

    /// One log: its verdict as ever. Several: each log's verdict under its name, then one line
    /// for the whole; the exit status is the worst of them.
    private func report(_ results: [(log: AuditLogs.Log, report: AuditReport)]) throws {
        let reports = results.map(\.report)
        if results.count == 1 {
            print(output.isJSON ? jsonText(VerifyResult(reports[0])) : reports[0].summary)
        } else if output.isJSON {
            print(
                jsonText(
                    ClusterVerifyResult(
                        valid: reports.allSatisfy(\.isValid),
                        logs: results.map { VerifyResult($0.report, log: $0.log.name) })))
        } else {
            for (log, report) in results { print("\(InertText.escape(log.name)): \(report.summary)") }
            let failed = reports.filter { !$0.isValid }.count,
                unsigned = reports.filter { $0.isValid && !$0.isSigned }.count
            print(
                failed > 0
                    ? "FAILED: \(failed) of \(results.count) logs"
                    : unsigned > 0 ? "UNSIGNED: \(unsigned) of \(results.count) logs" : "OK: \(results.count) logs")
        }
        if !reports.allSatisfy(\.isValid) { throw ExitCode(1) }
        if !reports.allSatisfy(\.isSigned) { throw ExitCode(Self.unsignedExitCode) }
    }
}

/// `tunnel audit verify --json` of several logs (docs/JSON.md).
struct ClusterVerifyResult: Encodable {
    let valid: Bool
    let logs: [VerifyResult]
}

/// `tunnel audit verify --json` (docs/JSON.md): the verdict and what was checked.
struct VerifyResult: Encodable {
    /// Which log, when several were verified.
    let log: String?
    let valid: Bool
    let problem: String?
    let keyID: String
    let files: [String]
    let records: UInt64
    let firstSeq: UInt64?
    let lastSeq: UInt64?
    let checkpoints: Int
    let recoveries: Int
    let lastCheckpointSeq: UInt64?
    let unsignedTail: UInt64
    let closedCleanly: Bool
    let summary: String

    init(_ report: AuditReport, log: String? = nil) {
        self.log = log
        valid = report.isValid
        problem = report.problem?.message
        keyID = report.keyID
        files = report.files
        records = report.records
        firstSeq = report.firstSeq
        lastSeq = report.lastSeq
        checkpoints = report.checkpoints
        recoveries = report.recoveries
        lastCheckpointSeq = report.lastCheckpointSeq
        unsignedTail = report.unsignedTail
        closedCleanly = report.closedCleanly
        summary = report.summary
    }
}
