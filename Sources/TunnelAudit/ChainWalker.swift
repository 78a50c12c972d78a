import Foundation
internal import Glibc
internal import TunnelTLS

/// The chain rules of docs/AUDIT.md §7, applied to record lines in log order.
///
/// Shared by the verifier (every file) and by the writer's recovery (the newest file), so the
/// writer never continues a chain the verifier would reject.
final class ChainWalker {
    /// How a file ends relative to the files being checked.
    enum FileEnding {
        /// Another file follows: this one must end with its rotation checkpoint.
        case followed
        /// The newest file of a log directory: it may end with an unsigned tail, but not with a
        /// rotation checkpoint (the segment that follows it would be missing).
        case newest
        /// The last file of an explicit list, which may stop anywhere the log continues.
        case endOfList
    }

    private let publicKey: AuditPublicKey
    private let hasher: SHA256Hasher
    /// True when the first record must be seq 1 with the all-zero prev (a log from its first
    /// segment); false when the first record is taken as given (a later part of a log).
    private let fromGenesis: Bool

    /// The last accepted record.
    private(set) var lastSeq: UInt64?
    private(set) var lastHash = RecordFormat.genesisHash
    private(set) var lastFile = ""
    private(set) var lastLine = 0
    /// The offset just past the last accepted record's newline, in its file.
    private(set) var lastEnd: Int64 = 0
    private(set) var lastKind = RecordHeader.Kind.event
    private(set) var lastReason = CheckpointReason.count

    private(set) var firstSeq: UInt64?
    private(set) var records: UInt64 = 0
    private(set) var checkpoints = 0
    private(set) var recoveries = 0
    private(set) var lastCheckpointSeq: UInt64?
    private(set) var recordsSinceCheckpoint = 0

    /// The file being read, its accepted records, and the UTC day of its first record.
    private(set) var file = ""
    private(set) var recordsInFile = 0
    private(set) var fileDay: Int64 = 0

    private var scratch = RecordFormat.genesisHash

    init(publicKey: AuditPublicKey, fromGenesis: Bool) throws(AuditError) {
        self.publicKey = publicKey
        self.hasher = try auditHasher()
        self.fromGenesis = fromGenesis
    }

    func beginFile(_ name: String) {
        file = name
        recordsInFile = 0
    }

    /// Checks one line against everything before it; nil if it is a good next record.
    func consume(_ line: LineReader.Line) -> AuditProblem? {
        let expected = lastSeq.map { $0 + 1 } ?? (fromGenesis ? 1 : nil)
        if let problem = endingProblem(line) { return problem }
        let header: RecordHeader
        do {
            header = try RecordHeader.parse(line.bytes)
        } catch {
            let hint = expected.map { " (record seq \($0) was expected here)" } ?? ""
            return problem(
                .malformed, line.number, nil,
                "line \(line.number) of \(file) is not a valid record\(hint): \(error.message)")
        }
        let record = ParsedLine(bytes: line.bytes, header: header, number: line.number)
        if let problem = segmentProblem(record) ?? sequenceProblem(record, expected: expected) {
            return problem
        }
        if header.kind == .checkpoint, let failure = checkCheckpoint(header, line.bytes, line.number) {
            return failure
        }
        accept(record, offset: line.offset)
        return nil
    }

    /// A record line with its parsed header, and the byte comparisons the chain rules make on it.
    private struct ParsedLine {
        let bytes: UnsafeRawBufferPointer
        let header: RecordHeader
        let number: Int
        var seq: UInt64 { header.seq }

        func bytesEqual(_ range: Range<Int>, _ other: [UInt8]) -> Bool {
            range.count == other.count
                && other.withUnsafeBytes {
                    memcmp(bytes.baseAddress! + range.lowerBound, $0.baseAddress!, range.count) == 0
                }
        }

        func text(_ range: Range<Int>) -> String {
            String(decoding: bytes[range], as: UTF8.self)
        }
    }

    /// A line must end with a newline and fit in a record.
    private func endingProblem(_ line: LineReader.Line) -> AuditProblem? {
        switch line.ending {
        case .newline:
            return nil
        case .endOfFile:
            return problem(
                .tornLine, line.number, nil,
                "\(file) ends in the middle of a record (line \(line.number), \(line.bytes.count) bytes without a newline): the file was truncated, or a write was torn by a crash"
            )
        case .tooLong:
            return problem(
                .malformed, line.number, nil,
                "line \(line.number) of \(file) is longer than any record can be (\(RecordFormat.maxRecordBytes) bytes)"
            )
        }
    }

    /// A file begins with a segment_start naming the file before it, and has no other; nothing
    /// follows a rotation checkpoint.
    private func segmentProblem(_ record: ParsedLine) -> AuditProblem? {
        let (header, seq, number) = (record.header, record.seq, record.number)
        if recordsInFile == 0 {
            guard header.kind == .segmentStart else {
                return problem(
                    .segmentLink, number, seq,
                    "\(file) does not begin with a segment_start record (line 1 is \(place(seq, number)), of type \(record.text(header.type))): the start of this file was removed"
                )
            }
            return segmentStartProblem(record)
        }
        if header.kind == .segmentStart {
            return problem(
                .malformed, number, seq,
                "\(place(seq, number)) is a segment_start record in the middle of a file")
        }
        if lastKind == .checkpoint, lastReason == .rotate {
            return problem(
                .afterRotation, number, seq,
                "\(place(seq, number)) follows the rotation checkpoint that ends \(file): records were added to a finished segment"
            )
        }
        return nil
    }

    /// A segment_start's link must agree with itself and with the file before it.
    private func segmentStartProblem(_ record: ParsedLine) -> AuditProblem? {
        let (header, seq, number) = (record.header, record.seq, record.number)
        guard header.previousSeq &+ 1 == seq,
            record.bytesEqual(header.previousHash, Array(record.bytes[header.prev]))
        else {
            return problem(
                .malformed, number, seq,
                "\(place(seq, number)): its previous_seq and previous_hash disagree with its own seq and prev")
        }
        if let lastSeq {
            guard record.bytesEqual(header.previousFile, Array(lastFile.utf8)), header.previousSeq == lastSeq,
                record.bytesEqual(header.previousHash, lastHash)
            else {
                return problem(
                    .segmentLink, number, seq,
                    "\(file) begins by naming \(record.text(header.previousFile)) ending at seq \(header.previousSeq) as its predecessor, but the file before it is \(lastFile) ending at seq \(lastSeq): a segment was removed, renamed or altered"
                )
            }
        } else if fromGenesis, header.previousFile.count != 0 || header.previousSeq != 0 {
            return problem(
                .missingFile, number, seq,
                "\(file) begins by naming \(record.text(header.previousFile)) ending at seq \(header.previousSeq) as its predecessor, so it is not the first segment of the log: earlier segments were removed"
            )
        }
        return nil
    }

    /// Seq numbers run on by one, and each record's prev is the hash of the one before.
    private func sequenceProblem(_ record: ParsedLine, expected: UInt64?) -> AuditProblem? {
        let (seq, number) = (record.seq, record.number)
        guard let expected else { return nil }
        if seq != expected {
            if lastSeq == nil {
                return problem(
                    .seqBreak, number, seq,
                    "the log's first record, \(place(seq, number)), should be seq 1: the beginning of the log was removed"
                )
            }
            let gap =
                seq > expected
                ? (seq == expected + 1
                    ? "record \(expected) is missing here" : "records \(expected)–\(seq - 1) are missing here")
                    + " — removed or reordered, or a file was cut"
                : "a record was inserted, duplicated or reordered here"
            return problem(.seqBreak, number, seq, "\(place(seq, number)) follows seq \(expected - 1): \(gap)")
        }
        guard !record.bytesEqual(record.header.prev, lastHash) else { return nil }
        if lastSeq == nil {
            return problem(
                .prevMismatch, number, seq,
                "\(place(seq, number)): the log's first record must have a prev of 64 zeros")
        }
        return problem(
            .prevMismatch, number, seq,
            "\(place(seq, number)): its prev hash does not match record \(seq - 1) — record \(seq - 1) was changed, or a record was inserted, removed or reordered here"
        )
    }

    /// Makes a good record the new end of the chain.
    private func accept(_ record: ParsedLine, offset: Int64) {
        let (header, seq) = (record.header, record.seq)
        hasher.hexDigest(record.bytes, into: &scratch)
        swap(&lastHash, &scratch)
        if recordsInFile == 0 { fileDay = header.utcDay }
        if firstSeq == nil { firstSeq = seq }
        lastSeq = seq
        lastFile = file
        lastLine = record.number
        lastEnd = offset + Int64(record.bytes.count) + 1
        lastKind = header.kind
        records += 1
        recordsInFile += 1
        switch header.kind {
        case .checkpoint:
            lastReason = header.reason
            checkpoints += 1
            lastCheckpointSeq = seq
            recordsSinceCheckpoint = 0
        case .recovery:
            recoveries += 1
            recordsSinceCheckpoint += 1
        case .event, .segmentStart, .writeResumed:
            recordsSinceCheckpoint += 1
        }
    }

    /// A checkpoint must name the record before it and carry a valid signature by the key.
    private func checkCheckpoint(_ header: RecordHeader, _ bytes: UnsafeRawBufferPointer, _ lineNumber: Int)
        -> AuditProblem?
    {
        let signedHash = Array(bytes[header.signedHash])
        guard header.signedSeq &+ 1 == header.seq, signedHash == lastHash else {
            return problem(
                .checkpointMismatch, lineNumber, header.seq,
                "checkpoint \(place(header.seq, lineNumber)) signs seq \(header.signedSeq) with a hash other than that of the record before it: the checkpoint was altered or moved"
            )
        }
        let keyID = String(decoding: bytes[header.keyID], as: UTF8.self)
        guard keyID == publicKey.keyID else {
            return problem(
                .wrongKey, lineNumber, header.seq,
                "checkpoint \(place(header.seq, lineNumber)) was signed by key \(keyID), not by the expected key \(publicKey.keyID): the log was re-signed with another key, or this is the wrong public key"
            )
        }
        let message = RecordFormat.checkpointMessage(
            signedSeq: header.signedSeq, signedHash: signedHash, file: file, reason: header.reason.rawValue.utf8
        )
        guard let signature = Data(base64Encoded: String(decoding: bytes[header.signature], as: UTF8.self)),
            publicKey.verify(signature: Array(signature), message: message)
        else {
            return problem(
                .badSignature, lineNumber, header.seq,
                "checkpoint \(place(header.seq, lineNumber)): its signature does not verify with key \(publicKey.keyID) — the checkpoint was altered, or the file was renamed"
            )
        }
        return nil
    }

    /// Checks how the current file ends; nil if it may end like this.
    func endFile(_ ending: FileEnding, requireClosed: Bool, nextFile: String) -> AuditProblem? {
        guard recordsInFile > 0 else {
            return AuditProblem(
                kind: .empty, file: file, line: nil, seq: nil,
                message:
                    "\(file) contains no records: its contents were deleted, or the writer crashed while starting it and has not restarted"
            )
        }
        let sealed = lastKind == .checkpoint && lastReason == .rotate
        let place = place(lastSeq!, lastLine)
        switch ending {
        case .followed:
            guard sealed else {
                return problem(
                    .unsealedSegment, lastLine, lastSeq,
                    "\(file) ends at \(place), which is not its rotation checkpoint: records were removed from the end of this file"
                )
            }
            return nil
        case .newest where sealed:
            return problem(
                .missingNextSegment, lastLine, lastSeq,
                "\(file) ends with a rotation checkpoint (\(place)) but \(nextFile) does not exist: the newest segment was deleted, or the writer crashed while rotating and has not restarted"
            )
        case .newest, .endOfList:
            guard !requireClosed || (lastKind == .checkpoint && lastReason == .close) else {
                return problem(
                    .notClosed, lastLine, lastSeq,
                    "the log ends at \(place), which is not a closing checkpoint: records after it were removed, or the writer has not closed the log (it is running, or crashed)"
                )
            }
            return nil
        }
    }

    /// How messages name a record, e.g. "record seq 1234 (audit-000002.jsonl line 17)". Built
    /// only for a problem: the verifier reads millions of good lines.
    private func place(_ seq: UInt64, _ line: Int) -> String {
        "record seq \(seq) (\(file) line \(line))"
    }

    private func problem(_ kind: AuditProblem.Kind, _ line: Int, _ seq: UInt64?, _ message: String) -> AuditProblem {
        AuditProblem(kind: kind, file: file, line: line, seq: seq, message: message)
    }
}
