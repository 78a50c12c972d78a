// The payloads of the records the log writes itself (docs/AUDIT.md §4), for readers. The writer
// spells their fields with `SystemField`, shared with the verifier; the round-trip test over the
// spec's example keeps these structs and those spellings together.

public struct SegmentStart: Codable, Sendable, Equatable {
    public var previousFile: String
    public var previousSeq: UInt64
    public var previousHash: String
}

public struct Checkpoint: Codable, Sendable, Equatable {
    public var signedSeq: UInt64
    public var signedHash: String
    public var keyId: String
    /// `count`, `interval`, `rotate`, `close` or `recovery`.
    public var reason: String
    public var signature: String
}

public struct Recovery: Codable, Sendable, Equatable {
    public var lostBytes: Int64
    public var lastGoodSeq: UInt64
    public var cleanShutdown: Bool
}

public struct WriteResumed: Codable, Sendable, Equatable {
    public var refusedAppends: Int64
    public var error: String
}
