import ArgumentParser
import Foundation
import TunnelAudit
import TunnelRuntime
import TunnelTLS
import TunnelText

/// Where the auditor commands read and who to tell about the read.
struct AuditSourceOptions: ParsableArguments {
    @Option(help: "Audit directory; repeat it for each replica's log of a cluster (records merged by time)") var dir:
        [String] = []
    @Option(help: "The gateway's admin socket, which records this read (default: the gateway's when it exists)")
    var adminSocket: String?

    var directories: [String] { dir.isEmpty ? [AuditReader.defaultDirectory] : dir }
    /// The directories as the audit record of the read names them.
    var described: String { directories.joined(separator: " ") }
}

public struct AuditCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The audit trail: list, show, verify, export, replay, serve.",
        discussion: "Format and guarantees: docs/AUDIT.md. verify works offline on a copy or an export.",
        subcommands: [
            AuditListCommand.self, AuditShowCommand.self, AuditVerifyCommand.self, AuditExportCommand.self,
            AuditReplayCommand.self, AuditServeCommand.self,
        ])
    public init() {}
}

/// A stream as `audit ls` shows it: its open record with its close record, when there is one.
struct AuditedStream {
    let open: AuditEntry
    let close: AuditEntry?

    static func pair(_ entries: [AuditEntry]) -> [AuditedStream] {
        var closes: [String: AuditEntry] = [:]
        for entry in entries {
            if case .streamClose(let parties, _) = entry.record.event { closes[parties.stream] = entry }
        }
        return entries.compactMap { entry in
            switch entry.record.event {
            case .streamOpen(let parties, _), .streamDeny(let parties, _, _):
                AuditedStream(open: entry, close: parties.target.flatMap { closes[$0.stream] })
            default: nil
            }
        }
    }

    /// The close record's payload, when there is one.
    var closed: StreamClose? {
        if case .streamClose(_, let close)? = close?.record.event { close } else { nil }
    }
}

public struct AuditListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List streams (or, with --events, all records).")
    @OptionGroup var source: AuditSourceOptions
    @Option(help: "Only this node") var node: String?
    @Option(help: "Only this operator") var user: String?
    @Option(help: "Only this service") var service: String?
    @Option(help: "Only since this long ago (24h) or this time (RFC 3339)") var since: String?
    @Flag(help: "Every record, not only streams") var events = false
    @OptionGroup var output: OutputOptions
    public init() {}

    public func run() throws {
        let since = try since.map { text throws(CommandFailure) in try AuditReader.time(text, flag: "--since") }
        for (name, kind) in [(node, NameKind.node), (user, .user), (service, .service)] {
            if let name {
                do { try Names.check(name, as: kind) } catch { throw CommandFailure.usage(error.message, .usage) }
            }
        }
        try AuditReader.recordRead("ls \(source.described)", adminSocket: source.adminSocket)
        // Bytes, as the gateway routes: `String.==` would let a Kelvin sign stand for `K`.
        func matches(_ entry: AuditEntry, _ field: String, _ wanted: String?) -> Bool {
            wanted.map { wanted in entry.string(field).map { Names.same($0, wanted) } ?? false } ?? true
        }
        let entries = try AuditLogs.merged(source.directories).filter { entry in
            (since == nil || (entry.date ?? .distantPast) >= since!)
                && matches(entry, "node", node) && matches(entry, "operator", user)
                && matches(entry, "service", service)
        }
        if events {
            if output.isJSON { return printJSON(entries.map(\.fields)) }
            for entry in entries { print(Self.eventLine(entry)) }
            return
        }
        let streams = AuditedStream.pair(entries)
        if output.isJSON {
            return printJSON(
                streams.map { stream in
                    ListedStream(outcome: Self.outcome(stream), open: stream.open.fields, close: stream.close?.fields)
                })
        }
        printTable(
            Self.table(streams, logNames: source.directories.count > 1 ? AuditLogs.names(of: source.directories) : [:]))
    }

    /// The streams as `audit ls` shows them, header first. With `logNames` (several logs, a
    /// cluster's: directory to replica), a REPLICA column says whose log holds each stream.
    static func table(_ streams: [AuditedStream], logNames: [String: String]) -> [[String]] {
        let rows = streams.map { stream -> [String] in
            let open = stream.open, closed = stream.closed
            let log = logNames.isEmpty ? [] : [logNames[(open.file as NSString).deletingLastPathComponent] ?? "-"]
            return [open.time] + log + [
                open.string("stream") ?? "-", open.string("operator") ?? "-", open.string("node") ?? "-",
                open.string("service") ?? "-", Self.outcome(stream),
                closed?.bytesToNode.map(String.init) ?? "-", closed?.bytesFromNode.map(String.init) ?? "-",
                closed?.durationMs.map { "\($0) ms" } ?? "-",
            ]
        }
        return [
            ["TIME"] + (logNames.isEmpty ? [] : ["REPLICA"]) + [
                "STREAM", "OPERATOR", "NODE", "SERVICE", "OUTCOME", "BYTES IN", "BYTES OUT", "DURATION",
            ]
        ] + rows
    }

    /// `denied`, `open` (no close record yet), or the close record's outcome.
    static func outcome(_ stream: AuditedStream) -> String {
        if case .streamDeny = stream.open.record.event { return "denied" }
        return stream.closed?.outcome.rawValue ?? "open"
    }

    /// One stream in `audit ls --json`: its records as they are in the log.
    struct ListedStream: Encodable {
        let outcome: String
        let open: [String: AuditValue]
        let close: [String: AuditValue]?
    }

    /// One record per line, whatever its fields hold: the line is escaped as a whole.
    static func eventLine(_ entry: AuditEntry) -> String {
        let rest = entry.fields.filter { !["seq", "time", "type", "prev"].contains($0.key) }.sorted { $0.key < $1.key }
        return InertText.escape(
            "\(entry.seq)  \(entry.time)  \(entry.type)  "
                + rest.map { "\($0.key)=\($0.value.text)" }.joined(separator: " "))
    }
}

public struct AuditShowCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Every record of one session or stream (ids from `audit ls`).")
    @Argument(help: "A session id, or a stream id SESSION/N") var id: String
    @OptionGroup var source: AuditSourceOptions
    @OptionGroup var output: OutputOptions
    public init() {}

    public func run() throws {
        try AuditReader.recordRead("show \(id) in \(source.described)", adminSocket: source.adminSocket)
        let matching = try AuditLogs.merged(source.directories).filter { entry in
            entry.string("session") == id || entry.string("stream") == id
                || (entry.string("stream")?.hasPrefix("\(id)/") ?? false)
        }
        guard !matching.isEmpty else {
            throw CommandFailure.failed(
                "no records of \(id) in \(source.described); `tunnel audit ls` lists streams", .auditNotFound)
        }
        if output.isJSON { return printJSON(matching.map(\.fields)) }
        for entry in matching {
            print(
                InertText.escapeJSON(
                    String(decoding: (try? JSONEncoder.sorted.encode(entry.fields)) ?? Data(), as: UTF8.self)))
        }
    }
}

public struct AuditReplayCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Play a recorded shell session in this terminal (asciinema play reads the same file).")
    @Argument(
        help: "The stream id of a shell session (from `tunnel audit ls --service shell`), or `last` for the latest")
    var id: String
    @OptionGroup var source: AuditSourceOptions
    @Option(help: "Speed factor") var speed: Double = 1
    @Option(help: "Longest pause, in seconds") var idleLimit: Double = 2
    public init() {}

    public func run() throws {
        try AuditReader.recordRead("replay \(id) in \(source.described)", adminSocket: source.adminSocket)
        let entries = try AuditLogs.merged(source.directories)
        // The open record names the recording, so a session whose close is not written yet
        // (still running, or ending this instant) can be played too; only a close seals it.
        let recorded = entries.reversed().lazy.compactMap {
            entry -> (entry: AuditEntry, stream: String, recording: String)? in
            guard case .streamOpen(let parties, let grant) = entry.record.event, let target = parties.target,
                let recording = grant.recording, id == "last" || target.stream == id
            else { return nil }
            return (entry, target.stream, recording)
        }
        guard let (open, stream, recording) = recorded.first else {
            throw CommandFailure.failed(
                "no recording of stream \(id) in \(source.described); `tunnel audit ls --service shell` lists recorded sessions",
                .auditNotFound)
        }
        // The recording is beside the log that holds its open record.
        let path = "\((open.file as NSString).deletingLastPathComponent)/recordings/\(recording)"
        let close = entries.reversed().lazy.compactMap { entry -> StreamClose? in
            guard case .streamClose(let parties, let close) = entry.record.event, parties.stream == stream else {
                return nil
            }
            return close
        }.first
        if let close {
            if let expected = close.recordingSha256, try AuditBundle.sha256(of: path) != expected {
                throw CommandFailure.failed(
                    "\(path) does not match the SHA-256 in its audit record: it was changed", .auditInvalid)
            }
        } else {
            FileHandle.standardError.write(
                Data("stream \(stream) is still open: its recording is not sealed by a close record yet\n".utf8))
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandFailure.failed("cannot read \(path)", .localFile)
        }
        var previous = 0.0
        for line in text.split(separator: "\n").dropFirst() {
            guard let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any], event.count == 3,
                let time = event[0] as? Double, let kind = event[1] as? String, let data = event[2] as? String,
                kind == "o"
            else { continue }
            let pause = min(idleLimit, max(0, time - previous)) / max(speed, 0.01)
            previous = time
            if pause > 0 { usleep(useconds_t(pause * 1_000_000)) }
            FileHandle.standardOutput.write(Data(data.utf8))
        }
    }
}

/// A file's size in bytes, 0 when it cannot be read (progress totals only).
func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}
