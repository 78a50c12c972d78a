/// Reading an existing log back when the writer reopens it (docs/AUDIT.md §6).
enum LogRecovery {
    /// Where the chain stands in the newest segment, and what to cut off it.
    struct Tail {
        /// The newest segment: continued after `goodBytes`, or, when that is 0, started anew.
        let segment: String
        let segmentNumber: Int
        /// Length of its complete, chaining records; the rest is a torn tail.
        let goodBytes: Int64
        let lostBytes: Int64
        let lastSeq: UInt64
        let lastHash: [UInt8]
        /// UTC day of the segment's first record.
        let segmentDay: Int64
        let recordsSinceCheckpoint: Int
        /// False when the segment ends with its rotation checkpoint or holds no record: the
        /// chain then continues in the next segment.
        let continues: Bool
        let cleanShutdown: Bool
    }

    static func findTail(directory: String, segments: [(number: Int, name: String)], publicKey: AuditPublicKey)
        throws(AuditError) -> Tail
    {
        let newest = segments[segments.count - 1]
        let scan = try check(directory, newest, publicKey)
        let walker = scan.walker
        if let lastSeq = walker.lastSeq {
            let lost = scan.fileSize - walker.lastEnd
            let endsWith = { (reason: CheckpointReason) in walker.lastKind == .checkpoint && walker.lastReason == reason
            }
            return Tail(
                segment: newest.name, segmentNumber: newest.number, goodBytes: walker.lastEnd, lostBytes: lost,
                lastSeq: lastSeq, lastHash: walker.lastHash, segmentDay: walker.fileDay,
                recordsSinceCheckpoint: walker.recordsSinceCheckpoint, continues: !endsWith(.rotate),
                cleanShutdown: lost == 0 && endsWith(.close)
            )
        }
        // The newest segment holds no complete record: the writer died while starting it, and
        // the chain stands where the segment before it ends.
        var lastSeq: UInt64 = 0
        var lastHash = RecordFormat.genesisHash
        var recordsSinceCheckpoint = 0
        if newest.number > 1 {
            let previousName = SegmentName.make(newest.number - 1)
            guard segments.count > 1, segments[segments.count - 2].number == newest.number - 1 else {
                throw AuditError(
                    .damaged,
                    "\(directory)/\(newest.name) holds no record and \(previousName) is missing, so the chain cannot be continued; start a new log in another directory"
                )
            }
            let prior = try check(directory, segments[segments.count - 2], publicKey)
            guard prior.problem == nil, let priorSeq = prior.walker.lastSeq else {
                throw AuditError(
                    .damaged,
                    "\(directory)/\(previousName) is damaged (\(prior.problem?.message ?? "it holds no record")); only the newest segment is repaired automatically"
                )
            }
            lastSeq = priorSeq
            lastHash = prior.walker.lastHash
            recordsSinceCheckpoint = prior.walker.recordsSinceCheckpoint
        }
        return Tail(
            segment: newest.name, segmentNumber: newest.number, goodBytes: 0, lostBytes: scan.fileSize,
            lastSeq: lastSeq, lastHash: lastHash, segmentDay: 0, recordsSinceCheckpoint: recordsSinceCheckpoint,
            continues: false, cleanShutdown: false
        )
    }

    /// Checks one segment with the verifier's rules and finds its first bad line. A bad line
    /// is only a torn tail if no complete record follows it; otherwise the damage is not what a
    /// crash leaves and nothing may be cut off.
    private static func check(
        _ directory: String, _ segment: (number: Int, name: String), _ publicKey: AuditPublicKey
    ) throws(AuditError) -> (walker: ChainWalker, fileSize: Int64, problem: AuditProblem?) {
        let path = "\(directory)/\(segment.name)"
        let walker = try ChainWalker(publicKey: publicKey, fromGenesis: segment.number == 1)
        walker.beginFile(segment.name)
        let reader = try LineReader(path: path)
        var problem: AuditProblem?
        while let line = try reader.next() {
            if let problem {
                guard line.ending != .newline || (try? RecordHeader.parse(line.bytes)) == nil else {
                    throw AuditError(
                        .damaged,
                        "\(path) is damaged: \(problem.message). Complete records follow at line \(line.number), so this is not the torn tail a crash leaves, and recovery will not cut them off. Keep the file for inspection and start a new log in another directory"
                    )
                }
            } else if let found = walker.consume(line) {
                switch found.kind {
                case .wrongKey:
                    throw AuditError(.key, "\(path) cannot be continued with this signing key: \(found.message)")
                case .badSignature:
                    throw AuditError(.damaged, "\(path) is damaged: \(found.message)")
                default:
                    problem = found
                }
            }
        }
        return (walker, reader.startOffset, problem)
    }

    /// Streams opened since the last clean close and not closed since, keyed by session.
    ///
    /// Two passes keep memory bounded by the number of open streams: the first finds the last
    /// clean close (newest segment first), the second replays opens and closes from there.
    static func openStreams(
        directory: String, segments: [(number: Int, name: String)], names: StreamRecordNames
    ) throws(AuditError) -> [String: [String: AuditValue]] {
        var startIndex = 0
        var startLine = 0
        for index in segments.indices.reversed() {
            let reader = try LineReader(path: "\(directory)/\(segments[index].name)")
            while let line = try reader.next() {
                if line.ending == .newline, let header = try? RecordHeader.parse(line.bytes),
                    header.kind == .checkpoint, header.reason == .close
                {
                    startLine = line.number
                }
            }
            if startLine > 0 {
                startIndex = index
                break
            }
        }

        var open: [String: [String: AuditValue]] = [:]
        for index in startIndex..<segments.count {
            let reader = try LineReader(path: "\(directory)/\(segments[index].name)")
            while let line = try reader.next() {
                guard line.ending == .newline, index > startIndex || line.number > startLine,
                    let header = try? RecordHeader.parse(line.bytes), header.kind == .event
                else { continue }
                let type = line.bytes[header.type]
                let opens = type.elementsEqual(names.openType.utf8)
                guard opens || type.elementsEqual(names.closeType.utf8),
                    let fields = try? RecordDecoder.fields(line.bytes),
                    let stream = identifier(fields[names.streamField])
                else { continue }
                open[stream] = opens ? fields : nil
            }
        }

        var bySession: [String: [String: AuditValue]] = [:]
        for fields in open.values {
            guard let session = identifier(fields[names.sessionField]) else { continue }
            if let existing = bySession[session], seq(existing) > seq(fields) { continue }
            bySession[session] = fields
        }
        return bySession
    }

    /// Stream and session ids may be logged as strings or integers.
    private static func identifier(_ value: AuditValue?) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        default: nil
        }
    }

    private static func seq(_ fields: [String: AuditValue]) -> Int64 {
        if case .int(let seq) = fields["seq"] { seq } else { 0 }
    }
}
