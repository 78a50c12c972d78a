/// The first thing wrong with an audit log, located as precisely as the evidence allows.
public struct AuditProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A segment file or the public key could not be read.
        case unreadable
        /// A segment number is missing: the first segment, or one between two others.
        case missingFile
        /// A file ends without a newline: truncated mid-record, or torn by a crash.
        case tornLine
        /// A line is not a valid canonical record.
        case malformed
        /// A seq is not the previous seq plus one.
        case seqBreak
        /// A prev is not the hash of the previous record's line.
        case prevMismatch
        /// A file does not start with a segment_start naming the end of the file before it.
        case segmentLink
        /// A record follows the rotation checkpoint that ends its file.
        case afterRotation
        /// A checkpoint's signed_seq or signed_hash does not name the record before it.
        case checkpointMismatch
        /// A checkpoint was signed by a different key than the auditor's.
        case wrongKey
        /// A checkpoint's signature does not verify.
        case badSignature
        /// A file that is followed by another does not end with its rotation checkpoint.
        case unsealedSegment
        /// The newest file ends with a rotation checkpoint but the next file does not exist.
        case missingNextSegment
        /// A closed log was required but the log does not end with a closing checkpoint.
        case notClosed
        /// There are no segment files, or a file has no records.
        case empty
    }

    public let kind: Kind
    /// The segment file name, when the problem is inside a file.
    public let file: String?
    /// 1-based line number in `file`, when known.
    public let line: Int?
    /// The seq of the record at fault, when it could be read.
    public let seq: UInt64?
    /// One sentence naming what is wrong and what it means.
    public let message: String

    public var description: String { message }
}

/// The outcome of verifying an audit log.
public struct AuditReport: Sendable {
    /// nil when the log verified.
    public let problem: AuditProblem?
    public var isValid: Bool { problem == nil }
    /// The key id of the public key checkpoints were verified with; compare it with the one
    /// the operator published.
    public let keyID: String
    /// Segment file names read, in order (up to the problem, if any).
    public let files: [String]
    /// Records accepted (before the problem, if any).
    public let records: UInt64
    public let firstSeq: UInt64?
    public let lastSeq: UInt64?
    public let checkpoints: Int
    /// Number of `recovery` records: restarts of the writer, clean or not.
    public let recoveries: Int
    /// Seq of the last checkpoint: it and every record before it are covered by a verified signature.
    public let lastCheckpointSeq: UInt64?
    /// Records after the last checkpoint, not yet covered by a signature: normal at the end of a
    /// running gateway's log, but anyone able to write the files could have changed them.
    public let unsignedTail: UInt64
    /// True when the last record is a checkpoint written by a clean close.
    public let closedCleanly: Bool

    /// Whether some checkpoint's signature covers records: without one, an intact chain proves
    /// nothing, since whoever can write the files can write a whole new chain (docs/AUDIT.md §7.4).
    public var isSigned: Bool { checkpoints > 0 }

    /// A short human-readable verdict: `FAILED`, `UNSIGNED` (valid chain, no signature at all)
    /// or `OK`.
    public var summary: String {
        if let problem { return "FAILED: \(problem.message)" }
        if !isSigned {
            return
                "UNSIGNED: \(files.count) file(s), \(records) records form an intact chain, but no checkpoint signs any of them, "
                + "so nothing shows the gateway wrote them: anyone able to write the files could have (a gateway that never reached its first checkpoint leaves such a log; verify again later)"
        }
        var text = "OK: \(files.count) file(s), \(records) records"
        if let firstSeq, let lastSeq { text += " (seq \(firstSeq)–\(lastSeq))" }
        text += ", \(checkpoints) checkpoints verified with key \(keyID), \(recoveries) writer restart(s)"
        if closedCleanly { text += "; the log was closed cleanly" }
        if unsignedTail > 0, let lastSeq {
            text +=
                "; the last \(unsignedTail) record(s) (seq \(lastSeq - unsignedTail + 1)–\(lastSeq)) are not yet covered by a signature"
        }
        return text
    }
}

/// Checks audit logs offline, from the segment files and the public key alone (docs/AUDIT.md §7).
public enum AuditVerifier {
    /// Verifies a whole log directory: it must start with `audit-000001.jsonl`, and its newest
    /// file is treated as the live end of the log.
    /// - Parameter requireClosed: also fail unless the log ends with a clean close. Only this
    ///   detects the removal of records from the end of a log that was closed: without it, such a
    ///   log looks like one whose writer is still running.
    /// - Parameter progress: called with the bytes read so far across all files, after each line
    ///   (`tunnel audit verify` draws a progress line with it).
    public static func verify(
        directory: String, publicKey: AuditPublicKey, requireClosed: Bool = false,
        progress: ((Int64) -> Void)? = nil
    ) -> AuditReport {
        let segments: [(number: Int, name: String)]
        do {
            segments = try SegmentName.list(directory: directory)
        } catch {
            return AuditReport(
                failure: AuditProblem(kind: .unreadable, file: nil, line: nil, seq: nil, message: error.message),
                keyID: publicKey.keyID)
        }
        return run(
            segments.map { ($0.number, "\(directory)/\($0.name)") }, publicKey: publicKey, wholeLog: true,
            requireClosed: requireClosed,
            progress: progress)
    }

    /// As `verify(directory:publicKey:requireClosed:)`, reading the public key from
    /// `publicKeyFile`, or from `audit-key.pub.pem` in `directory` when nil.
    public static func verify(
        directory: String, publicKeyFile: String? = nil, requireClosed: Bool = false,
        progress: ((Int64) -> Void)? = nil
    ) -> AuditReport {
        let path = publicKeyFile ?? "\(directory)/\(AuditSigningKey.publicKeyFileName)"
        do {
            return verify(
                directory: directory, publicKey: try AuditPublicKey(pemFile: path), requireClosed: requireClosed,
                progress: progress)
        } catch {
            return AuditReport(
                failure: AuditProblem(kind: .unreadable, file: nil, line: nil, seq: nil, message: error.message),
                keyID: "")
        }
    }

    /// Verifies an explicit set of consecutive segment files, e.g. an evidence bundle. If it does
    /// not start with `audit-000001.jsonl`, the first file's segment_start is taken as the
    /// starting point: everything from there on is checked, nothing before it. The last file may
    /// end with a rotation checkpoint (the log goes on in a file not included).
    public static func verify(
        files: [String], publicKey: AuditPublicKey, requireClosed: Bool = false,
        progress: ((Int64) -> Void)? = nil
    ) -> AuditReport {
        var segments: [(number: Int, path: String)] = []
        for path in files {
            guard let number = SegmentName.number(of: FileSystem.baseName(of: path)) else {
                let problem = AuditProblem(
                    kind: .unreadable, file: path, line: nil, seq: nil,
                    message:
                        "\(path) is not named like a segment (audit-NNNNNN.jsonl); segment names are part of what checkpoints sign"
                )
                return AuditReport(failure: problem, keyID: publicKey.keyID)
            }
            segments.append((number, path))
        }
        segments.sort { $0.number < $1.number }
        return run(segments, publicKey: publicKey, wholeLog: false, requireClosed: requireClosed, progress: progress)
    }

    private static func run(
        _ segments: [(number: Int, path: String)], publicKey: AuditPublicKey, wholeLog: Bool, requireClosed: Bool,
        progress: ((Int64) -> Void)?
    ) -> AuditReport {
        guard let first = segments.first else {
            let problem = AuditProblem(
                kind: .empty, file: nil, line: nil, seq: nil,
                message: "there are no audit-NNNNNN.jsonl segment files to verify")
            return AuditReport(failure: problem, keyID: publicKey.keyID)
        }
        let walker: ChainWalker
        do {
            walker = try ChainWalker(publicKey: publicKey, fromGenesis: first.number == 1)
        } catch {
            return AuditReport(
                failure: AuditProblem(kind: .unreadable, file: nil, line: nil, seq: nil, message: error.description),
                keyID: publicKey.keyID)
        }
        var names: [String] = []
        var problem: AuditProblem?
        var previousNumber = wholeLog ? 0 : first.number - 1
        var bytesBefore: Int64 = 0
        for (index, segment) in segments.enumerated() {
            let name = SegmentName.make(segment.number)
            if let gap = gapProblem(segment.number, after: previousNumber, walker: walker) {
                problem = gap
                break
            }
            previousNumber = segment.number
            names.append(name)
            walker.beginFile(name)
            let ending: ChainWalker.FileEnding =
                index + 1 < segments.count ? .followed : wholeLog ? .newest : .endOfList
            if let found = walk(segment.path, named: name, with: walker, bytesBefore: &bytesBefore, progress: progress)
                ?? walker.endFile(ending, requireClosed: requireClosed, nextFile: SegmentName.make(segment.number + 1))
            {
                problem = found
                break
            }
        }
        return AuditReport(walker: walker, files: names, problem: problem, keyID: publicKey.keyID)
    }

    /// Segments must be numbered one after another from where the check starts.
    private static func gapProblem(_ number: Int, after previousNumber: Int, walker: ChainWalker) -> AuditProblem? {
        guard number != previousNumber + 1 else { return nil }
        let name = SegmentName.make(number)
        let missing = SegmentName.make(previousNumber + 1)
        let message =
            number == previousNumber
            ? "\(name) is given twice"
            : previousNumber == 0
                ? "\(missing) is missing: the log's first segment(s) were removed (verify the remaining files as a list to check them from \(name) on)"
                : "\(missing) is missing: the files jump from \(SegmentName.make(previousNumber)) to \(name), so a whole segment was removed"
        return AuditProblem(
            kind: .missingFile, file: missing, line: nil, seq: walker.lastSeq.map { $0 + 1 }, message: message)
    }

    /// Feeds every line of one segment to the walker; the first problem, if any.
    private static func walk(
        _ path: String, named name: String, with walker: ChainWalker, bytesBefore: inout Int64,
        progress: ((Int64) -> Void)?
    ) -> AuditProblem? {
        do {
            let reader = try LineReader(path: path)
            var fileBytes: Int64 = 0
            while let line = try reader.next() {
                if let found = walker.consume(line) { return found }
                fileBytes = line.offset + Int64(line.bytes.count) + 1
                progress?(bytesBefore + fileBytes)
            }
            bytesBefore += fileBytes
            return nil
        } catch {
            return AuditProblem(kind: .unreadable, file: name, line: nil, seq: nil, message: error.message)
        }
    }
}

extension AuditReport {
    /// What the walker saw, up to the first problem if there was one.
    fileprivate init(walker: ChainWalker, files: [String], problem: AuditProblem?, keyID: String) {
        self.init(
            problem: problem,
            keyID: keyID,
            files: files,
            records: walker.records,
            firstSeq: walker.firstSeq,
            lastSeq: walker.lastSeq,
            checkpoints: walker.checkpoints,
            recoveries: walker.recoveries,
            lastCheckpointSeq: walker.lastCheckpointSeq,
            unsignedTail: UInt64(walker.recordsSinceCheckpoint),
            closedCleanly: walker.lastKind == .checkpoint && walker.lastReason == .close
        )
    }

    /// A report for a failure before any record was read.
    init(failure: AuditProblem, keyID: String) {
        self.init(
            problem: failure, keyID: keyID, files: [], records: 0, firstSeq: nil, lastSeq: nil, checkpoints: 0,
            recoveries: 0, lastCheckpointSeq: nil, unsignedTail: 0, closedCleanly: false
        )
    }
}
