/// Names and limits of the record format (docs/AUDIT.md), shared by the writer and the verifier
/// so the two can never disagree about a spelling.
enum RecordFormat {
    /// Longest record line, newline excluded. Bounds the memory a reader needs and keeps one
    /// write(2) per record reasonable; event metadata is small.
    static let maxRecordBytes = 1 << 20
    /// Longest record type or top-level field name.
    static let maxNameBytes = 64
    /// `prev` of the first record of a log: 64 ASCII zeros.
    static let genesisHash = [UInt8](repeating: UInt8(ascii: "0"), count: 64)
    /// Hex digits of a key id: the first 8 bytes of SHA-256 of the raw Ed25519 public key.
    static let keyIDLength = 16

    /// The fields every record has, in byte order (the order they appear among the others).
    static let reservedFields = ["prev", "seq", "time", "type"]

    /// Record types the writer produces itself; callers may not append them.
    static let systemTypes: Set<String> = ["checkpoint", "recovery", "segment_start", "write_resumed"]

    /// Record type and field names: 1–64 bytes of ASCII letters, digits, `_`, `-` and `.`.
    /// Names never need escaping, so a reader can compare them byte for byte.
    static func isValidName<Bytes: Collection<UInt8>>(_ name: Bytes) -> Bool {
        guard (1...maxNameBytes).contains(name.count) else { return false }
        return name.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
                return true
            default:
                return false
            }
        }
    }

    /// The bytes a checkpoint signs (docs/AUDIT.md §4.2). The reason is signed too: otherwise a
    /// `rotate` checkpoint could be relabelled `close` to hide a deleted newest segment.
    static func checkpointMessage(
        signedSeq: UInt64, signedHash: some Sequence<UInt8>, file: String, reason: some Sequence<UInt8>
    ) -> [UInt8] {
        var message = Array("tunnel-audit-checkpoint/1\n\(signedSeq)\n".utf8)
        message += signedHash
        message.append(0x0A)
        message += file.utf8
        message.append(0x0A)
        message += reason
        message.append(0x0A)
        return message
    }
}

/// Why a checkpoint was written; part of what it signs.
enum CheckpointReason: String, CaseIterable {
    /// `checkpointEvery` records since the previous checkpoint.
    case count
    /// `checkpointInterval` elapsed since the previous checkpoint.
    case interval
    /// The last record of a segment before the next one starts.
    case rotate
    /// Written by `AuditLog.close(now:)`: the writer shut down cleanly.
    case close
    /// Written when a writer opens an existing log, after its `recovery` record: it signs what
    /// the previous writer left unsigned, so a crash loop leaves no lifetime's records unsigned.
    case recovery
}

/// Field names of the records the writer produces itself, as `StaticString` so the reader's
/// byte comparisons and the writer's dictionaries use the same constants.
enum SystemField {
    static let signedSeq: StaticString = "signed_seq"
    static let signedHash: StaticString = "signed_hash"
    static let keyID: StaticString = "key_id"
    static let signature: StaticString = "signature"
    static let reason: StaticString = "reason"
    static let previousFile: StaticString = "previous_file"
    static let previousSeq: StaticString = "previous_seq"
    static let previousHash: StaticString = "previous_hash"
    static let lostBytes: StaticString = "lost_bytes"
    static let lastGoodSeq: StaticString = "last_good_seq"
    static let cleanShutdown: StaticString = "clean_shutdown"
    static let refusedAppends: StaticString = "refused_appends"
    static let error: StaticString = "error"
}

extension StaticString {
    /// The string as a `String`, for dictionary keys and messages.
    var text: String { description }
}
