/// One record read back from a log: the four fields every record has (docs/AUDIT.md §3.2), its
/// typed event, and the fields the event's type does not name.
public struct AuditRecord: Sendable, Equatable {
    public let seq: UInt64
    /// The hash of the previous record's line, 64 hex digits.
    public let prev: String
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as the writer's clock had it.
    public let time: String
    public let event: AuditEvent
    /// Fields beyond the event's: a newer writer's additions, kept so nothing read is lost.
    public let extra: [String: AuditValue]

    /// Reads one line (without its newline) in the canonical form of §3.1. Only the form is
    /// checked; the chain and signatures are `AuditVerifier`'s.
    public init(line: some Collection<UInt8>) throws(AuditError) {
        let bytes = Array(line)
        let decoded = bytes.withUnsafeBytes { buffer in
            Result { () throws(ScanError) in try RecordDecoder.fields(buffer) }
        }
        switch decoded {
        case .success(let fields): try self.init(fields: fields)
        case .failure(let error): throw AuditError(.damaged, "not an audit record: \(error.message)")
        }
    }

    /// Reads a record from all its fields, `seq`, `prev`, `time` and `type` included.
    public init(fields: [String: AuditValue]) throws(AuditError) {
        guard case .int(let seq)? = fields["seq"], seq >= 0, case .string(let prev)? = fields["prev"],
            case .string(let time)? = fields["time"], case .string(let type)? = fields["type"]
        else {
            throw AuditError(.damaged, "not an audit record: it lacks one of seq, prev, time and type")
        }
        self.seq = UInt64(seq)
        self.prev = prev
        self.time = time
        var extra: [String: AuditValue] = [:]
        event = AuditEvent(
            type: type, fields: fields.filter { !RecordFormat.reservedFields.contains($0.key) }, extra: &extra)
        self.extra = extra
    }

    public var type: String { event.type }

    /// Every field of the record as it is stored.
    public var fields: [String: AuditValue] {
        event.fields.merging(extra) { $1 }.merging([
            "seq": .int(Int64(clamping: seq)), "prev": .string(prev), "time": .string(time),
            "type": .string(event.type),
        ]) { $1 }
    }
}
