import Foundation
internal import TunnelTLS

/// How an `AuditLog` rotates segments and how often it signs checkpoints.
public struct AuditLogConfiguration: Sendable, Equatable {
    /// A segment is rotated before the first record that would start past this size, so a file
    /// exceeds it by at most one record and its rotation checkpoint. At least 4096.
    public var maxSegmentBytes: Int64
    /// Start a new segment when the UTC day of the clock differs from that of the segment's start.
    public var rotateDaily: Bool
    /// Sign a checkpoint before the next record once this many records are unsigned.
    public var checkpointEvery: Int
    /// Sign a checkpoint once this many seconds passed since the last one (seen by `append` and `tick`).
    public var checkpointInterval: TimeInterval
    /// Which records `AuditLog.unclosedStreams()` pairs up after a crash.
    public var streamRecords: StreamRecordNames
    /// Fields every record carries, the log's own records too, over any of the same name
    /// (a cluster replica's `replica`); none by default.
    public var everyRecord: [String: AuditValue] = [:]

    public init(
        maxSegmentBytes: Int64 = 64 << 20,
        rotateDaily: Bool = true,
        checkpointEvery: Int = 1000,
        checkpointInterval: TimeInterval = 60,
        streamRecords: StreamRecordNames = StreamRecordNames()
    ) {
        self.maxSegmentBytes = maxSegmentBytes
        self.rotateDaily = rotateDaily
        self.checkpointEvery = checkpointEvery
        self.checkpointInterval = checkpointInterval
        self.streamRecords = streamRecords
    }
}

/// The record types and fields that mark streams opening and closing. The log itself does not
/// interpret them except to find, after a crash, the streams that were never closed.
public struct StreamRecordNames: Sendable, Equatable {
    /// Type of the record written when a stream opens.
    public var openType: String
    /// Type of the record written when a stream ends.
    public var closeType: String
    /// Field identifying the stream in both records (a string or an integer).
    public var streamField: String
    /// Field of the open record whose value keys `unclosedStreams()`.
    public var sessionField: String

    public init(
        openType: String = "stream_open", closeType: String = "stream_close", streamField: String = "stream",
        sessionField: String = "session"
    ) {
        self.openType = openType
        self.closeType = closeType
        self.streamField = streamField
        self.sessionField = sessionField
    }
}

/// What `AuditLog.init` found and did when it reopened an existing log.
public struct RecoveryInfo: Sendable, Equatable {
    /// The segment whose tail was examined.
    public let segment: String
    /// Bytes cut off its end: a torn or unparseable tail left by a crash.
    public let lostBytes: Int64
    /// The last record that survived.
    public let lastGoodSeq: UInt64
    /// True when that record was the checkpoint of a clean `close(now:)` and nothing was cut.
    public let cleanShutdown: Bool
    /// The seq of the `recovery` record that documents this in the log.
    public let recordSeq: UInt64
}

/// Appends records to a hash-chained, checkpoint-signed audit log (docs/AUDIT.md).
///
/// Loop-confined: use it from one thread (the gateway's event loop). Every method does blocking
/// file I/O; durable appends wait for the disk.
///
/// After a failed write or fsync the log is *failed*: the partial record is cut off, and every
/// later `append`, `tick`, `sync` and `close` throws until `retry(now:)` succeeds, which logs a
/// `write_resumed` record so auditors see the gap.
public final class AuditLog {
    public let directory: String
    public let policy: AuditLogConfiguration
    /// Set when `init` reopened an existing log; nil for a new one.
    public private(set) var recovery: RecoveryInfo?
    /// False while the log is failed (see the type's documentation).
    public var isHealthy: Bool { failure == nil }
    /// The seq of the last record written.
    public var lastSeq: UInt64 { seq }
    /// The name of the segment currently written.
    public var currentSegment: String { SegmentName.make(segment == nil ? segmentNumber + 1 : segmentNumber) }

    private let key: AuditSigningKey
    private let hasher: SHA256Hasher
    private var encoder = RecordEncoder()
    /// The open segment; nil only while a rotation is unfinished (after a failure, or a crash
    /// right after a rotation checkpoint) — the next write starts segment `segmentNumber + 1`.
    private var segment: SegmentFile?
    private var segmentNumber = 0
    /// UTC day of the current segment's first record.
    private var segmentDay: Int64 = 0
    private var seq: UInt64 = 0
    /// Hex SHA-256 of the last record's line: the next record's `prev`.
    private var lastHash = RecordFormat.genesisHash
    private var scratchHash = RecordFormat.genesisHash
    private var recordsSinceCheckpoint = 0
    private var lastCheckpointMilliseconds: Int64
    private let checkpointIntervalMilliseconds: Int64
    private var unsynced = false
    private var failure: AuditError?
    private var refusedAppends = 0
    private var closed = false
    private var streamsOpenAtRecovery: [String: [String: AuditValue]] = [:]

    /// Opens the log in `directory` (created with mode 0700 if missing).
    ///
    /// An existing log is recovered: the newest segment is checked record by record; a torn
    /// tail (an incomplete or unparseable last line, as a crash leaves) is cut off and fsynced;
    /// then a `recovery` record states how many bytes were lost, the last good seq, and whether the
    /// previous writer closed the log cleanly. Damage that a crash cannot explain (complete
    /// records after a bad one, a foreign signing key) is refused with `.damaged` or `.key`.
    public init(
        directory: String, signingKey: AuditSigningKey, policy: AuditLogConfiguration = AuditLogConfiguration(),
        now: Date
    ) throws(AuditError) {
        guard policy.maxSegmentBytes >= 4096, policy.checkpointEvery >= 1,
            policy.checkpointInterval > 0, policy.checkpointInterval <= 86_400 * 365
        else {
            throw AuditError(
                .invalidArgument,
                "audit log policy needs maxSegmentBytes ≥ 4096, checkpointEvery ≥ 1 and a checkpointInterval between 0 and one year"
            )
        }
        let milliseconds = try RecordTime.milliseconds(now)
        self.directory = directory
        self.policy = policy
        self.key = signingKey
        self.hasher = try auditHasher()
        self.lastCheckpointMilliseconds = milliseconds
        self.checkpointIntervalMilliseconds = Int64((policy.checkpointInterval * 1000).rounded(.up))

        try FileSystem.makeDirectory(directory, mode: 0o700)
        let segments = try SegmentName.list(directory: directory)
        if segments.isEmpty {
            try startSegment(number: 1, milliseconds: milliseconds)
        } else {
            try recover(segments, milliseconds: milliseconds)
        }
    }

    /// Appends one record and returns its seq.
    ///
    /// - Parameters:
    ///   - type: 1–64 ASCII letters, digits, `_`, `-`, `.`; not one of the log's own types
    ///     (`checkpoint`, `recovery`, `segment_start`, `write_resumed`).
    ///   - fields: names as for `type`, except `prev`, `seq`, `time` and `type`.
    ///   - now: the record's time; also drives rotation and interval checkpoints.
    ///   - durable: wait for fdatasync(2) before returning, e.g. for a stream-open record that
    ///     must be on disk before the stream carries data. Otherwise the record is durable after
    ///     the next `sync()`, durable append, or checkpoint from `tick`/rotation/`close`.
    @discardableResult
    public func append(type: String, fields: [String: AuditValue], now: Date, durable: Bool) throws(AuditError)
        -> UInt64
    {
        if failure != nil { refusedAppends += 1 }
        try checkWritable()
        guard !RecordFormat.systemTypes.contains(type) else {
            throw AuditError(.invalidArgument, "record type \"\(type)\" is reserved for the audit log's own records")
        }
        return try appendRecord(
            type: type, fields: fields, milliseconds: RecordTime.milliseconds(now), durable: durable)
    }

    /// Appends one event record: `event`'s type and fields (see `append(type:fields:now:durable:)`).
    @discardableResult
    public func append(_ event: AuditEvent, now: Date, durable: Bool) throws(AuditError) -> UInt64 {
        try append(type: event.type, fields: event.fields, now: now, durable: durable)
    }

    /// Writes an interval or count checkpoint if one is due, durably. Call it periodically
    /// (e.g. every second) so that a quiet gateway still signs its last records.
    public func tick(now: Date) throws(AuditError) {
        try checkWritable()
        let milliseconds = try RecordTime.milliseconds(now)
        guard let reason = dueCheckpoint(milliseconds) else { return }
        try recordingFailure { () throws(AuditError) in
            try writeCheckpoint(reason, milliseconds: milliseconds, durable: true)
        }
    }

    /// Makes every record appended so far durable.
    public func sync() throws(AuditError) {
        try checkWritable()
        guard unsynced, let file = segment else { return }
        try recordingFailure { () throws(AuditError) in try file.sync() }
        unsynced = false
    }

    /// Writes the final, durable checkpoint (reason `close`) and closes the file. Later calls
    /// other than `close` throw `.closed`. Without it the next `init` reports an unclean shutdown.
    public func close(now: Date) throws(AuditError) {
        guard !closed else { return }
        try checkWritable()
        let milliseconds = try RecordTime.milliseconds(now)
        try recordingFailure { () throws(AuditError) in
            try writeCheckpoint(.close, milliseconds: milliseconds, durable: true)
        }
        closed = true
        segment = nil
    }

    /// Leaves the failed state once the cause (e.g. a full disk) is fixed: cuts off whatever the
    /// failed write left, finishes an interrupted rotation, and durably logs a `write_resumed`
    /// record (`refused_appends`, `error`). Does nothing when the log is healthy.
    public func retry(now: Date) throws(AuditError) {
        guard let cause = failure else { return }
        let milliseconds = try RecordTime.milliseconds(now)
        try recordingFailure { () throws(AuditError) in
            if let file = segment { try file.truncate(to: file.size) }
            try rotateIfDue(milliseconds)
            try write(
                type: "write_resumed",
                fields: [
                    SystemField.refusedAppends.text: .int(Int64(refusedAppends)),
                    SystemField.error.text: .string(cause.message),
                ],
                milliseconds: milliseconds, durable: true
            )
        }
        failure = nil
        refusedAppends = 0
    }

    /// The streams that were open when the previous writer stopped without a clean close:
    /// open records (per `policy.streamRecords`) since the last clean close with no close record
    /// for the same stream, keyed by their session field (the latest open record wins if two share
    /// one). Each value is the whole open record, `seq` and `time` included. Empty after a clean
    /// shutdown or for a new log; a snapshot taken by `init`, so log the closes you infer with
    /// `append` (e.g. with a reason "gateway_crash").
    public func unclosedStreams() -> [String: [String: AuditValue]] {
        streamsOpenAtRecovery
    }

    // MARK: Writing

    private func checkWritable() throws(AuditError) {
        if closed { throw AuditError(.closed, "the audit log in \(directory) is closed") }
        if let failure {
            throw AuditError(
                .failed,
                "the audit log in \(directory) accepts no records since a write failed (\(failure.message)); call retry(now:) once the cause is fixed"
            )
        }
    }

    /// Runs file operations, entering the failed state if one throws.
    private func recordingFailure(_ body: () throws(AuditError) -> Void) throws(AuditError) {
        do {
            try body()
        } catch {
            failure = error
            throw error
        }
    }

    /// Rotates and checkpoints first if due, so a failure there leaves the caller's record
    /// unwritten; then writes the record.
    private func appendRecord(type: String, fields: [String: AuditValue], milliseconds: Int64, durable: Bool)
        throws(AuditError) -> UInt64
    {
        try recordingFailure { () throws(AuditError) in
            try rotateIfDue(milliseconds)
            if let reason = dueCheckpoint(milliseconds) {
                try writeCheckpoint(reason, milliseconds: milliseconds, durable: false)
            }
        }
        try write(type: type, fields: fields, milliseconds: milliseconds, durable: durable)
        return seq
    }

    private func dueCheckpoint(_ milliseconds: Int64) -> CheckpointReason? {
        if recordsSinceCheckpoint >= policy.checkpointEvery { return .count }
        if recordsSinceCheckpoint > 0, milliseconds - lastCheckpointMilliseconds >= checkpointIntervalMilliseconds {
            return .interval
        }
        return nil
    }

    private func rotateIfDue(_ milliseconds: Int64) throws(AuditError) {
        guard let file = segment else {
            try startSegment(number: segmentNumber + 1, milliseconds: milliseconds)
            return
        }
        let newDay = policy.rotateDaily && RecordTime.utcDay(milliseconds: milliseconds) != segmentDay
        guard newDay || file.size >= policy.maxSegmentBytes else { return }
        try writeCheckpoint(.rotate, milliseconds: milliseconds, durable: true)
        segment = nil
        try startSegment(number: segmentNumber + 1, milliseconds: milliseconds)
    }

    /// Creates segment `number`, makes its directory entry durable, and writes its
    /// `segment_start` record naming the end of the previous segment.
    private func startSegment(number: Int, milliseconds: Int64) throws(AuditError) {
        let file = try SegmentFile(directory: directory, name: SegmentName.make(number))
        guard file.size == 0 else {
            throw AuditError(
                .damaged, "\(file.path) already exists and is not empty; the audit log will not overwrite it")
        }
        try FileSystem.syncDirectory(directory)
        let fields: [String: AuditValue] = [
            SystemField.previousFile.text: .string(number > 1 ? SegmentName.make(number - 1) : ""),
            SystemField.previousSeq.text: .int(Int64(seq)),
            SystemField.previousHash.text: .string(String(decoding: lastHash, as: UTF8.self)),
        ]
        segment = file
        segmentNumber = number
        segmentDay = RecordTime.utcDay(milliseconds: milliseconds)
        do {
            try write(type: "segment_start", fields: fields, milliseconds: milliseconds, durable: true)
        } catch {
            // The rotation stays unfinished; the next write starts this segment again.
            segment = nil
            segmentNumber = number - 1
            throw error
        }
    }

    /// The segment to write to. Only a failed log lacks one, and a failed log writes nothing
    /// before `retry` has started the segment.
    private func openSegment() throws(AuditError) -> SegmentFile {
        guard let segment else { throw AuditError(.failed, "the audit log in \(directory) has no open segment") }
        return segment
    }

    private func writeCheckpoint(_ reason: CheckpointReason, milliseconds: Int64, durable: Bool) throws(AuditError) {
        let file = try openSegment()
        let message = RecordFormat.checkpointMessage(
            signedSeq: seq, signedHash: lastHash, file: file.name, reason: reason.rawValue.utf8)
        let fields: [String: AuditValue] = [
            SystemField.signedSeq.text: .int(Int64(seq)),
            SystemField.signedHash.text: .string(String(decoding: lastHash, as: UTF8.self)),
            SystemField.keyID.text: .string(key.keyID),
            SystemField.signature.text: .string(Data(try key.sign(message)).base64EncodedString()),
            SystemField.reason.text: .string(reason.rawValue),
        ]
        try write(type: "checkpoint", fields: fields, milliseconds: milliseconds, durable: durable)
        recordsSinceCheckpoint = 0
        lastCheckpointMilliseconds = milliseconds
    }

    /// Encodes and writes one record to the open segment. An invalid record throws before
    /// anything is written and leaves the log healthy; a failed write enters the failed state.
    private func write(type: String, fields: [String: AuditValue], milliseconds: Int64, durable: Bool)
        throws(AuditError)
    {
        let file = try openSegment()
        let fields = policy.everyRecord.isEmpty ? fields : fields.merging(policy.everyRecord) { $1 }
        try encoder.encode(seq: seq + 1, milliseconds: milliseconds, type: type, prev: lastHash, fields: fields)
        encoder.line.withUnsafeBytes {
            hasher.hexDigest(UnsafeRawBufferPointer(rebasing: $0.dropLast()), into: &scratchHash)
        }
        try recordingFailure { () throws(AuditError) in try file.append(encoder.line, durable: durable) }
        seq += 1
        swap(&lastHash, &scratchHash)
        unsynced = !durable
        if type != "checkpoint" { recordsSinceCheckpoint += 1 }
    }

    // MARK: Recovery

    private func recover(_ segments: [(number: Int, name: String)], milliseconds: Int64) throws(AuditError) {
        let tail = try LogRecovery.findTail(directory: directory, segments: segments, publicKey: key.publicKey)
        let file = try SegmentFile(directory: directory, name: tail.segment)
        if file.size != tail.goodBytes { try file.truncate(to: tail.goodBytes) }
        seq = tail.lastSeq
        lastHash = tail.lastHash
        recordsSinceCheckpoint = tail.recordsSinceCheckpoint
        segmentDay = tail.segmentDay
        if tail.continues {
            segmentNumber = tail.segmentNumber
            segment = file
        } else {
            // Either the segment ended with its rotation checkpoint or holds no record at all:
            // in both cases the chain continues in a new segment `segmentNumber + 1`.
            segmentNumber = tail.segmentNumber - (tail.goodBytes == 0 ? 1 : 0)
            segment = nil
        }
        if !tail.cleanShutdown {
            streamsOpenAtRecovery = try LogRecovery.openStreams(
                directory: directory, segments: segments, names: policy.streamRecords)
        }
        let recordSeq = try appendRecord(
            type: "recovery",
            fields: [
                SystemField.lostBytes.text: .int(tail.lostBytes),
                SystemField.lastGoodSeq.text: .int(Int64(tail.lastSeq)),
                SystemField.cleanShutdown.text: .bool(tail.cleanShutdown),
            ],
            milliseconds: milliseconds, durable: true
        )
        // What the previous writer left unsigned is signed now, not after a full interval of
        // this run: a gateway that crashes every few seconds would otherwise sign nothing.
        try recordingFailure { () throws(AuditError) in
            try writeCheckpoint(.recovery, milliseconds: milliseconds, durable: true)
        }
        recovery = RecoveryInfo(
            segment: tail.segment, lostBytes: tail.lostBytes, lastGoodSeq: tail.lastSeq,
            cleanShutdown: tail.cleanShutdown, recordSeq: recordSeq
        )
    }
}
