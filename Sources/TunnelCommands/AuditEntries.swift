import ArgumentParser
import Foundation
import TunnelAudit
import TunnelRuntime

/// One audit record as the auditor commands read it: the typed record, and the file it is in.
struct AuditEntry {
    let file: String
    let record: AuditRecord
    /// Every field as stored, for showing the record whole.
    let fields: [String: AuditValue]

    init(file: String, record: AuditRecord) {
        self.file = file
        self.record = record
        fields = record.fields
    }

    var seq: UInt64 { record.seq }
    var type: String { record.type }
    var time: String { record.time }
    var date: Date? { AuditEntry.parseTime(time) }

    func string(_ key: String) -> String? {
        if case .string(let value)? = fields[key] { return value }
        return nil
    }

    func int(_ key: String) -> Int64? {
        if case .int(let value)? = fields[key] { return value }
        return nil
    }

    /// Made once: a formatter is costly to build, and every record's time is parsed.
    nonisolated(unsafe) private static let withFraction: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
    nonisolated(unsafe) private static let withoutFraction = ISO8601DateFormatter()

    /// The auditor commands are single-threaded; the formatters are used from that thread only.
    static func parseTime(_ text: String) -> Date? {
        withFraction.date(from: text) ?? withoutFraction.date(from: text)
    }
}

/// Reading an audit directory for `tunnel audit ls|show|export|replay`. Verification is
/// `AuditVerifier`'s; these commands only present what is there.
enum AuditReader {
    static let defaultDirectory = "/var/lib/tunnel/gateway/audit"

    static func segments(in directory: String) throws(CommandFailure) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw .usage("\(directory) is not a readable audit directory; give --dir", .usage)
        }
        return names.filter { $0.hasPrefix("audit-") && $0.hasSuffix(".jsonl") }.sorted().map { "\(directory)/\($0)" }
    }

    static func entries(of file: String) throws(CommandFailure) -> [AuditEntry] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw .failed("cannot read \(file)", .localFile)
        }
        // A line that is not a record (a torn tail) is skipped here; `verify` reports it.
        return text.split(separator: "\n").compactMap { line in
            (try? AuditRecord(line: line.utf8)).map { AuditEntry(file: file, record: $0) }
        }
    }

    static func entries(in directory: String) throws(CommandFailure) -> [AuditEntry] {
        var all: [AuditEntry] = []
        for file in try segments(in: directory) { all += try entries(of: file) }
        return all
    }

    /// Reads of a gateway's audit log are themselves audited: when the gateway's admin socket is
    /// there, it records the read first, and a read it could not record does not happen.
    /// Without a socket (a copy on an auditor's machine) there is nobody to tell.
    static func recordRead(_ what: String, adminSocket: String?) throws(CommandFailure) {
        let socket =
            adminSocket
            ?? (FileManager.default.fileExists(atPath: AdminOptions.defaultSocket) ? AdminOptions.defaultSocket : nil)
        guard let socket else { return }
        let outcome: Result<AdminReply, FleetFailure>?
        do {
            outcome = try AdminChannel.exchange(.recordAuditRead(what: what), with: socket)
        } catch {
            throw .failed("cannot start: \(error)", .systemResource)
        }
        switch outcome {
        case .success(.refused(let failure)):
            throw .failed(
                "the gateway did not record this audit read, so it is not done: \(failure.message)", .auditUnavailable)
        case .success: return
        case .failure(let failure):
            throw .failed(
                "the gateway did not record this audit read, so it is not done: \(failure.message)", .auditUnavailable)
        case nil: throw .failed("no answer from the admin socket \(socket)", .gatewayUnreachable)
        }
    }

    /// `--since 24h` (ago) or an RFC 3339 time.
    static func time(_ text: String, flag: String) throws(CommandFailure) -> Date {
        if let date = AuditEntry.parseTime(text) { return date }
        return Date().addingTimeInterval(-Double(try durationSeconds(text, flag: flag)))
    }
}
