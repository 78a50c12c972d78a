/// A stream identifier. Odd IDs are opened by the dialer, even ones by the acceptor, 0 is the
/// session itself.
public typealias StreamID = UInt32

/// Frame types of protocol version 1 (`docs/PROTOCOL.md` §3).
public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 0x0
    case open = 0x1
    case accept = 0x2
    case data = 0x3
    case windowUpdate = 0x4
    case reset = 0x5
    case ping = 0x6
    case goAway = 0x7

    /// Flags defined for this type; any other flag bit set is a protocol error.
    var allowedFlags: FrameFlags {
        switch self {
        case .open: [.fin, .interactive]
        case .accept, .data: .fin
        case .ping: .ack
        case .hello, .windowUpdate, .reset, .goAway: []
        }
    }

    /// The payload length range allowed for this type, checked before any payload is buffered.
    var payloadLengths: ClosedRange<Int> {
        switch self {
        case .hello: HelloFrame.encodedLength...Limits.maxHelloPayload
        case .open, .accept: 0...Limits.maxMetadataLength
        case .data: 0...Limits.maxDataPayload
        case .windowUpdate, .reset: 4...4
        case .ping: 8...8
        case .goAway: 8...(8 + Limits.maxGoAwayMessage)
        }
    }

    /// Whether frames of this type name a stream (non-zero ID) or the session (ID 0).
    var isStreamFrame: Bool {
        switch self {
        case .open, .accept, .data, .reset: true
        case .hello, .ping, .goAway: false
        case .windowUpdate: true // either: 0 is the connection window
        }
    }
}

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Last frame the sender sends on this stream (half-close).
    public static let fin = FrameFlags(rawValue: 0x1)
    /// On OPEN: schedule this stream ahead of bulk streams.
    public static let interactive = FrameFlags(rawValue: 0x2)
    /// On PING: this is the answer.
    public static let ack = FrameFlags(rawValue: 0x1)
}

/// The HELLO payload: version range and the sender's advertised limits.
public struct HelloFrame: Hashable, Sendable {
    static let encodedLength = 16

    public var minVersion: UInt8
    public var maxVersion: UInt8
    public var maxConcurrentStreams: UInt32
    public var initialStreamWindow: UInt32
    public var connectionWindow: UInt32

    public init(
        minVersion: UInt8, maxVersion: UInt8, maxConcurrentStreams: UInt32, initialStreamWindow: UInt32,
        connectionWindow: UInt32
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.maxConcurrentStreams = maxConcurrentStreams
        self.initialStreamWindow = initialStreamWindow
        self.connectionWindow = connectionWindow
    }
}

/// One decoded frame. Payload bytes are slices of the received buffer where possible.
public enum Frame: Hashable, Sendable {
    case hello(HelloFrame)
    case open(StreamID, metadata: ArraySlice<UInt8>, interactive: Bool, fin: Bool)
    case accept(StreamID, metadata: ArraySlice<UInt8>, fin: Bool)
    case data(StreamID, ArraySlice<UInt8>, fin: Bool)
    case windowUpdate(StreamID, increment: UInt32)
    case reset(StreamID, ErrorCode)
    case ping(opaque: UInt64, ack: Bool)
    case goAway(lastStreamID: StreamID, ErrorCode, message: ArraySlice<UInt8>)
}

/// Writes frames into an output buffer; the one place that knows the byte layout for writing.
public enum FrameEncoder {
    static func appendHeader(
        _ type: FrameType, flags: FrameFlags, length: Int, streamID: StreamID, to buffer: inout [UInt8]
    ) {
        buffer.append(type.rawValue)
        buffer.append(flags.rawValue)
        buffer.append(UInt8(truncatingIfNeeded: length >> 8))
        buffer.append(UInt8(truncatingIfNeeded: length))
        appendUInt32(streamID, to: &buffer)
    }

    static func appendUInt32(_ value: UInt32, to buffer: inout [UInt8]) {
        buffer.append(UInt8(truncatingIfNeeded: value >> 24))
        buffer.append(UInt8(truncatingIfNeeded: value >> 16))
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
        buffer.append(UInt8(truncatingIfNeeded: value))
    }

    public static func append(_ frame: Frame, to buffer: inout [UInt8]) {
        switch frame {
        case .hello(let hello):
            appendHeader(.hello, flags: [], length: HelloFrame.encodedLength, streamID: 0, to: &buffer)
            buffer.append(hello.minVersion)
            buffer.append(hello.maxVersion)
            buffer.append(0)
            buffer.append(0)
            appendUInt32(hello.maxConcurrentStreams, to: &buffer)
            appendUInt32(hello.initialStreamWindow, to: &buffer)
            appendUInt32(hello.connectionWindow, to: &buffer)
        case .open(let id, let metadata, let interactive, let fin):
            var flags: FrameFlags = fin ? .fin : []
            if interactive { flags.insert(.interactive) }
            appendHeader(.open, flags: flags, length: metadata.count, streamID: id, to: &buffer)
            buffer.append(contentsOf: metadata)
        case .accept(let id, let metadata, let fin):
            appendHeader(.accept, flags: fin ? .fin : [], length: metadata.count, streamID: id, to: &buffer)
            buffer.append(contentsOf: metadata)
        case .data(let id, let payload, let fin):
            appendHeader(.data, flags: fin ? .fin : [], length: payload.count, streamID: id, to: &buffer)
            buffer.append(contentsOf: payload)
        case .windowUpdate(let id, let increment):
            appendHeader(.windowUpdate, flags: [], length: 4, streamID: id, to: &buffer)
            appendUInt32(increment, to: &buffer)
        case .reset(let id, let code):
            appendHeader(.reset, flags: [], length: 4, streamID: id, to: &buffer)
            appendUInt32(code.rawValue, to: &buffer)
        case .ping(let opaque, let ack):
            appendHeader(.ping, flags: ack ? .ack : [], length: 8, streamID: 0, to: &buffer)
            appendUInt32(UInt32(truncatingIfNeeded: opaque >> 32), to: &buffer)
            appendUInt32(UInt32(truncatingIfNeeded: opaque), to: &buffer)
        case .goAway(let last, let code, let message):
            appendHeader(.goAway, flags: [], length: 8 + message.count, streamID: 0, to: &buffer)
            appendUInt32(last, to: &buffer)
            appendUInt32(code.rawValue, to: &buffer)
            buffer.append(contentsOf: message)
        }
    }

    /// Encodes one frame into a new array; used by tests and tools, never on the hot path.
    public static func encode(_ frame: Frame) -> [UInt8] {
        var buffer: [UInt8] = []
        append(frame, to: &buffer)
        return buffer
    }
}
