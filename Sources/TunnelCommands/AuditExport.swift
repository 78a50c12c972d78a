import ArgumentParser
import Foundation
import TunnelAudit
import TunnelRuntime
import TunnelTLS
import TunnelText

/// Evidence bundles: a tar of whole segments (the chain and its checkpoints need them whole),
/// the recordings of the streams in range, the public key and a SHA-256 manifest of all of them.
enum AuditBundle {
    static let manifest = "MANIFEST.sha256"

    /// Runs tar; `output`, when given, is its standard output (`-cf -`); `whileRunning`, when
    /// given, is called ten times a second until tar ends (to draw progress).
    static func run(_ arguments: [String], output: FileHandle? = nil, whileRunning: (() -> Void)? = nil)
        throws(CommandFailure)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = arguments
        if let output { process.standardOutput = output }
        do { try process.run() } catch { throw .failed("cannot run tar: \(error)", .programMissing) }
        if let whileRunning {
            while process.isRunning {
                whileRunning()
                usleep(100_000)
            }
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .failed("tar \(arguments.joined(separator: " ")) failed", .localFile)
        }
    }

    static func sha256(of path: String) throws(CommandFailure) -> String {
        do { return Hex.encode(SHA256.hash(try DurableFile.read(path: path, limit: 1 << 30))) } catch {
            throw .failed("cannot read \(path): \(error)", .localFile)
        }
    }

    static func temporaryDirectory() throws(CommandFailure) -> String {
        let path = NSTemporaryDirectory() + "tunnel-audit-\(UUID().uuidString)"
        try makePrivateDirectory(path)
        return path
    }

    /// Unpacks a bundle into a temporary directory and verifies its one log (`unpack`).
    static func verify(bundle: String, publicKeyFile: String?) throws(CommandFailure) -> AuditReport {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try unpack(bundle: bundle, into: directory, publicKeyFile: publicKeyFile)
    }

    /// Unpacks a bundle of one log into `directory`, checks it against its manifest, then
    /// verifies the chain and signatures of the segments there.
    static func unpack(bundle: String, into directory: String, publicKeyFile: String?) throws(CommandFailure)
        -> AuditReport
    {
        try unpackChecked(bundle: bundle, into: directory)
        guard !(try AuditReader.segments(in: directory)).isEmpty else {
            throw .failed(
                "\(bundle) holds no audit segments at its top (an export of several logs is checked with `tunnel audit verify`)",
                .auditInvalid)
        }
        let log = AuditLogs.Log(name: bundle, directory: directory, isExcerpt: true)
        return try AuditLogs.verify([log], keyFiles: publicKeyFile.map { [$0] } ?? [], requireClosed: false)[0].report
    }

    /// Unpacks a bundle into `directory` and checks every file against the manifest.
    static func unpackChecked(bundle: String, into directory: String) throws(CommandFailure) {
        try run(["-xf", bundle, "-C", directory])
        guard let listed = try? String(contentsOfFile: "\(directory)/\(manifest)", encoding: .utf8) else {
            throw .failed("\(bundle) has no \(manifest); it is not a bundle from `tunnel audit export`", .auditInvalid)
        }
        for line in listed.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let name = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " *"))
            guard FileManager.default.fileExists(atPath: "\(directory)/\(name)") else {
                throw .failed("\(bundle): \(name) is listed in the manifest but missing", .auditInvalid)
            }
            guard try sha256(of: "\(directory)/\(name)") == parts[0] else {
                throw .failed(
                    "\(bundle): \(name) does not match its SHA-256 in the manifest: it was changed", .auditInvalid)
            }
        }
    }
}

public struct AuditExportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an evidence bundle (tar) of the records, recordings, hashes and checkpoints of a period.")
    @OptionGroup var source: AuditSourceOptions
    @Option(help: "From this long ago (24h) or this time (RFC 3339)") var since: String
    @Option(help: "Until this long ago or this time (default now)") var until: String?
    @Option(help: "The bundle file to write: a new file (never overwritten, no symlink followed)") var out: String
    public init() {}

    public func run() throws {
        let from = try AuditReader.time(since, flag: "--since")
        let to = try until.map { text throws(CommandFailure) in try AuditReader.time(text, flag: "--until") } ?? Date()
        try AuditReader.recordRead(
            "export \(since)…\(until ?? "now") of \(source.described)", adminSocket: source.adminSocket)
        print(try AuditBundle.export(directories: source.directories, from: from, to: to, out: out))
    }
}

extension AuditBundle {
    /// Writes the bundle of one log (the console's export).
    static func export(directory: String, from: Date, to: Date, out: String) throws(CommandFailure) -> String {
        try export(directories: [directory], from: from, to: to, out: out)
    }

    /// Writes the bundle of the segments that overlap `from`…`to` and the recordings of the
    /// streams closed in it; returns the sentence saying what it wrote. Several logs (a
    /// cluster's) go into a subdirectory each, named by `AuditLogs.exportNames`.
    static func export(directories: [String], from: Date, to: Date, out: String) throws(CommandFailure) -> String {
        let staging = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let prefixes = directories.count == 1 ? [""] : AuditLogs.exportNames(directories).map { "\($0)/" }
        var segments: [[String]] = []
        for directory in directories { segments.append(try AuditReader.segments(in: directory)) }
        let reading = ProgressLine("reading", total: segments.joined().reduce(0) { $0 + fileSize($1) }, unit: .bytes)
        var read: Int64 = 0
        var names: [String] = []
        var recordings = 0
        for (index, directory) in directories.enumerated() {
            let staged = try stage(
                segments[index], of: directory, from: from, to: to, into: staging, prefix: prefixes[index]
            ) { size in
                read += size
                reading.update(read)
            }
            names += staged.names
            recordings += staged.recordings
        }
        reading.finish()
        guard !names.isEmpty else {
            throw .failed(
                "no audit records between \(from) and \(to) in \(directories.joined(separator: " "))", .auditNotFound)
        }
        // Hashing, then tar writing the bundle: each pass over the staged bytes is half the work.
        let staged = names.reduce(0) { $0 + fileSize("\(staging)/\($1)") }
        let packing = ProgressLine("packing", total: 2 * staged, unit: .bytes)
        var hashed: Int64 = 0
        var manifest = ""
        for name in names {
            manifest += "\(try sha256(of: "\(staging)/\(name)"))  \(name)\n"
            hashed += fileSize("\(staging)/\(name)")
            packing.update(hashed)
        }
        do {
            try DurableFile.write(path: "\(staging)/\(self.manifest)", bytes: Array(manifest.utf8), mode: 0o644)
        } catch { throw .failed("cannot write the manifest: \(error)", .localFile) }
        try writeNew(out) { file throws(CommandFailure) in
            try run(["-cf", "-", "-C", staging, self.manifest] + names, output: file) {
                packing.update(staged + fileSize(out))
            }
        }
        packing.finish()
        let segmentCount = names.filter { $0.hasSuffix(".jsonl") }.count
        return
            "wrote \(out): \(segmentCount) segment(s) of \(directories.count) log(s), \(recordings) recording(s); check it with `tunnel audit verify \(out)`"
    }

    /// Copies into `staging/prefix` the segments of one log that overlap `from`…`to`, the
    /// recordings of the streams closed in it and the log's public key; returns the names
    /// staged (when any segment was) and the number of recordings. `read` is told each
    /// segment's size as it is read.
    private static func stage(
        _ segments: [String], of directory: String, from: Date, to: Date, into staging: String, prefix: String,
        read: (Int64) -> Void
    ) throws(CommandFailure) -> (names: [String], recordings: Int) {
        var names: [String] = []
        var recordings: Set<String> = []
        for segment in segments {
            read(fileSize(segment))
            let entries = try AuditReader.entries(of: segment)
            guard let first = entries.first?.date, let last = entries.last?.date, last >= from, first <= to else {
                continue
            }
            if names.isEmpty && !prefix.isEmpty { try makePrivateDirectory("\(staging)/\(prefix)") }
            let name = prefix + (segment as NSString).lastPathComponent
            try copy(segment, to: "\(staging)/\(name)")
            names.append(name)
            for entry in entries {
                if case .streamClose(_, let close) = entry.record.event, let date = entry.date, date >= from,
                    date <= to, let recording = close.recording
                {
                    recordings.insert(recording)
                }
            }
        }
        guard !names.isEmpty else { return ([], 0) }
        if !recordings.isEmpty { try makePrivateDirectory("\(staging)/\(prefix)recordings") }
        for recording in recordings.sorted() {
            let name = "\(prefix)recordings/\(recording)"
            try copy("\(directory)/recordings/\(recording)", to: "\(staging)/\(name)")
            names.append(name)
        }
        let key = "\(directory)/\(AuditSigningKey.publicKeyFileName)"
        if FileManager.default.fileExists(atPath: key) {
            try copy(key, to: "\(staging)/\(prefix)\(AuditSigningKey.publicKeyFileName)")
            names.append(prefix + AuditSigningKey.publicKeyFileName)
        }
        return (names, recordings.count)
    }

    /// Creates `path` as a new file (0600: recordings hold keystrokes) and lets `body` fill it.
    /// Never follows a symlink and never opens what exists (O_CREAT|O_EXCL|O_NOFOLLOW): a link
    /// planted at the path cannot redirect the bundle onto another file.
    static func writeNew(_ path: String, _ body: (FileHandle) throws(CommandFailure) -> Void) throws(CommandFailure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            if errno == EEXIST {
                throw .failed(
                    "\(path) already exists (a file or a link); an export never overwrites: choose a new --out",
                    .localFile)
            }
            throw .failed("cannot create \(path): \(reason)", .localFile)
        }
        let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do throws(CommandFailure) {
            try body(file)
            guard fsync(descriptor) == 0 else {
                throw .failed("cannot sync \(path): \(String(cString: strerror(errno)))", .localFile)
            }
        } catch {
            unlink(path)
            throw error
        }
    }

    private static func copy(_ source: String, to destination: String) throws(CommandFailure) {
        do { try FileManager.default.copyItem(atPath: source, toPath: destination) } catch {
            throw .failed("cannot copy \(source): \(error)", .localFile)
        }
    }
}
