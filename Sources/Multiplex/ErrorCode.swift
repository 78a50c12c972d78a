/// An error code as carried on the wire in RESET and GOAWAY frames (`docs/PROTOCOL.md` §8).
///
/// Codes below `0x100` belong to the protocol; codes from `0x100` up are the application's
/// (the gateway uses them to say "unknown service" or "denied by policy").
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Graceful: a go-away with no fault, or a stream closed on purpose.
    public static let noError = ErrorCode(rawValue: 0x0)
    /// The peer broke a rule of the protocol (bad frame, wrong state, wrong parity…).
    public static let protocolError = ErrorCode(rawValue: 0x1)
    /// The sender hit a bug or ran out of a resource; not the receiver's fault.
    public static let internalError = ErrorCode(rawValue: 0x2)
    /// The peer sent beyond its credit, or a window update was zero or overflowed.
    public static let flowControlError = ErrorCode(rawValue: 0x3)
    /// The stream was not processed at all and may be retried (stream cap, going away).
    public static let refusedStream = ErrorCode(rawValue: 0x4)
    /// The stream's opener or acceptor no longer wants it.
    public static let cancel = ErrorCode(rawValue: 0x5)
    /// A frame's length was above the limit for its type.
    public static let frameSizeError = ErrorCode(rawValue: 0x6)
    /// The peer is flooding: rapid resets, control-frame floods, replies it does not read.
    public static let enhanceYourCalm = ErrorCode(rawValue: 0x7)
    /// No protocol version both sides speak.
    public static let unsupportedVersion = ErrorCode(rawValue: 0x8)
    /// Nothing heard from the peer for the keepalive timeout; only ever local, never sent as a reset.
    public static let keepaliveTimeout = ErrorCode(rawValue: 0x9)
    /// A frame arrived for a stream direction that was already finished.
    public static let streamClosed = ErrorCode(rawValue: 0xA)

    /// First code free for applications.
    public static let firstApplicationCode: UInt32 = 0x100

    public var isApplicationCode: Bool { rawValue >= Self.firstApplicationCode }

    public var description: String {
        switch self {
        case .noError: "no-error"
        case .protocolError: "protocol-error"
        case .internalError: "internal-error"
        case .flowControlError: "flow-control-error"
        case .refusedStream: "refused-stream"
        case .cancel: "cancel"
        case .frameSizeError: "frame-size-error"
        case .enhanceYourCalm: "enhance-your-calm"
        case .unsupportedVersion: "unsupported-version"
        case .keepaliveTimeout: "keepalive-timeout"
        case .streamClosed: "stream-closed"
        default: isApplicationCode ? "application-\(rawValue)" : "unknown-\(rawValue)"
        }
    }
}

/// Why the session or a stream ended: a wire code plus a human sentence for logs.
public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}

/// A command the owner gave cannot be carried out; the session itself is unharmed.
public enum MultiplexError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No such stream, or it is already closed.
    case unknownStream(StreamID)
    /// The stream's sending direction was already finished or reset.
    case streamNotWritable(StreamID)
    /// Only a stream the peer opened, and that is not yet accepted, can be accepted.
    case streamNotAcceptable(StreamID)
    /// Open metadata above `Limits.maxMetadataLength`.
    case metadataTooLong(Int)
    /// The peer's advertised concurrent-stream cap is reached; retry when a stream closes.
    case streamLimitReached(Int)
    /// Stream IDs of this side are used up; the session is going away, reconnect.
    case streamIDsExhausted
    /// A go-away was sent or received; no new streams on this session.
    case goingAway
    /// The session is closed.
    case sessionClosed(Failure)

    public var description: String {
        switch self {
        case .unknownStream(let id): "stream \(id) does not exist or is closed"
        case .streamNotWritable(let id): "stream \(id) is finished for sending"
        case .streamNotAcceptable(let id): "stream \(id) is not waiting to be accepted"
        case .metadataTooLong(let length):
            "stream metadata is \(length) bytes; at most \(Limits.maxMetadataLength) are allowed"
        case .streamLimitReached(let limit): "the peer allows \(limit) concurrent streams and all are in use"
        case .streamIDsExhausted: "stream IDs are exhausted; the session is going away"
        case .goingAway: "the session is going away; open the stream on a new session"
        case .sessionClosed(let failure): "the session is closed (\(failure))"
        }
    }
}
