import Foundation
import TunnelAudit
import TunnelText

/// Several audit logs read as one trail: a gateway cluster, where each replica keeps its own
/// chain and key (docs/AUDIT.md §11). Each log is verified on its own; listings merge records
/// by time.
enum AuditLogs {
    /// One log among several: its directory, and the name it is shown under.
    struct Log {
        let name: String
        let directory: String
        /// Segments from an export: they may start after the first and end with a rotation
        /// (docs/AUDIT.md §7.1), where a whole directory may not.
        let isExcerpt: Bool
    }

    /// Every record of `directories`, merged by time. Each log's own order (its seq order) is
    /// kept even where its clock stepped back: at each step the log whose next record is oldest
    /// gives it, and a tie goes to the log named first.
    static func merged(_ directories: [String]) throws(CommandFailure) -> [AuditEntry] {
        var logs: [[AuditEntry]] = []
        for directory in directories { logs.append(try AuditReader.entries(in: directory)) }
        if logs.count == 1 { return logs[0] }
        var next = Array(repeating: 0, count: logs.count)
        var merged: [AuditEntry] = []
        merged.reserveCapacity(logs.reduce(0) { $0 + $1.count })
        while true {
            var pick: Int?
            for index in logs.indices where next[index] < logs[index].count {
                guard let current = pick else {
                    pick = index
                    continue
                }
                if date(logs[index][next[index]]) < date(logs[current][next[current]]) { pick = index }
            }
            guard let pick else { return merged }
            merged.append(logs[pick][next[pick]])
            next[pick] += 1
        }
    }

    private static func date(_ entry: AuditEntry) -> Date { entry.date ?? .distantPast }

    /// The logs in an unpacked bundle: the bundle's top directory when it holds segments (an
    /// export of one log), else each subdirectory that does (an export of a cluster), by name.
    static func logs(inUnpacked directory: String) -> [Log] {
        if !((try? AuditReader.segments(in: directory)) ?? []).isEmpty {
            return [Log(name: "", directory: directory, isExcerpt: true)]
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.map { Log(name: $0, directory: "\(directory)/\($0)", isExcerpt: true) }
            .filter { !((try? AuditReader.segments(in: $0.directory)) ?? []).isEmpty }
    }

    /// The names logs go by in a cluster export: each log's `replica` (the field every record of
    /// a replica carries), or `log-N` for a log without a usable one; never the same twice.
    static func exportNames(_ directories: [String]) -> [String] {
        var taken: Set<String> = []
        return directories.enumerated().map { index, directory in
            var name = replicaName(of: directory) ?? "log-\(index + 1)"
            if taken.contains(name) { name = "log-\(index + 1)" }
            taken.insert(name)
            return name
        }
    }

    /// Each log's name from `exportNames`, keyed as its records' files name their directory
    /// (`AuditEntry.file` less its last component), so `--dir d/` finds its records too.
    static func names(of directories: [String]) -> [String: String] {
        let keys = directories.map { ("\($0)/audit-000001.jsonl" as NSString).deletingLastPathComponent }
        return Dictionary(zip(keys, exportNames(directories))) { first, _ in first }
    }

    /// The `replica` of the log's first record that names one, when it is a valid name (so it
    /// is safe as a directory name in a bundle).
    private static func replicaName(of directory: String) -> String? {
        guard let first = ((try? AuditReader.segments(in: directory)) ?? []).first,
            let name = ((try? AuditReader.entries(of: first)) ?? []).lazy.compactMap({ $0.string("replica") }).first,
            (try? Names.check(name, as: .node)) != nil
        else { return nil }
        return name
    }

    /// The key id the log's first checkpoint names: which of the auditor's keys to check it
    /// with. The signatures are still verified with that key, so a forged id gains nothing.
    static func keyID(of directory: String) -> String? {
        for segment in (try? AuditReader.segments(in: directory)) ?? [] {
            let entries = (try? AuditReader.entries(of: segment)) ?? []
            for entry in entries {
                if case .checkpoint(let checkpoint) = entry.record.event { return checkpoint.keyId }
            }
        }
        return nil
    }

    /// Verifies each log with its key: the one `--key` file when a single log is checked, the
    /// `--key` whose id its checkpoints name when there are several (when none has it, the first,
    /// so the verifier names the key id that differs), or the public key beside it when no
    /// `--key` is given.
    static func verify(
        _ logs: [Log], keyFiles: [String], requireClosed: Bool,
        progress: ((Int64) -> Void)? = nil
    ) throws(CommandFailure) -> [(log: Log, report: AuditReport)] {
        var keys: [AuditPublicKey] = []
        for file in keyFiles {
            do { keys.append(try AuditPublicKey(pemFile: file)) } catch {
                throw .usage("cannot read the public key \(file): \(error)", .localFile)
            }
        }
        var results: [(log: Log, report: AuditReport)] = []
        var done: Int64 = 0
        for log in logs {
            let segments = try AuditReader.segments(in: log.directory)
            let before = done
            done += segments.reduce(0) { $0 + fileSize($1) }
            let report: (Int64) -> Void = { progress?(before + $0) }
            let wanted = keyID(of: log.directory)
            let key = keys.first { $0.keyID == wanted } ?? keys.first
            guard log.isExcerpt else {
                results.append(
                    (
                        log,
                        key.map {
                            AuditVerifier.verify(
                                directory: log.directory, publicKey: $0, requireClosed: requireClosed, progress: report)
                        }
                            ?? AuditVerifier.verify(
                                directory: log.directory, publicKeyFile: nil, requireClosed: requireClosed,
                                progress: report)
                    ))
                continue
            }
            let beside = "\(log.directory)/\(AuditSigningKey.publicKeyFileName)"
            let publicKey: AuditPublicKey
            do { publicKey = try key ?? AuditPublicKey(pemFile: beside) } catch {
                throw .failed("cannot read the public key \(beside): \(error)", .localFile)
            }
            results.append(
                (
                    log,
                    AuditVerifier.verify(
                        files: segments, publicKey: publicKey, requireClosed: requireClosed, progress: report)
                ))
        }
        return results
    }
}
