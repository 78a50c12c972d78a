/// Turns received bytes into frames, incrementally: bytes may arrive one at a time or many frames
/// at once. Every length is checked against its type's limit from the 8-byte header, before any
/// payload is held, so a peer cannot make the decoder allocate more than one maximal frame.
///
/// A frame that arrives whole inside one received chunk is returned as slices of that chunk
/// (no copy); only a frame split across chunks is assembled in the decoder's own buffer.
public struct FrameDecoder {
    /// Bytes received but not yet decoded, as handed in by `append`.
    private var input: ArraySlice<UInt8> = []
    /// The start of a frame split across chunks: at most one header plus one maximal payload.
    private var partial: [UInt8] = []

    public init() {}

    /// Hands the decoder more received bytes. Call `next()` until it returns nil before the
    /// next `append`, or the remaining bytes are copied once to keep them.
    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        if bytes.isEmpty { return }
        if input.isEmpty {
            input = bytes
        } else {
            input = ArraySlice(Array(input) + bytes)
        }
    }

    /// Bytes held but not yet returned as a frame.
    public var bufferedByteCount: Int { input.count + partial.count }

    /// The next complete frame, nil when more bytes are needed, or a `Failure` naming the broken
    /// rule (after which the connection must be closed: the decoder's position is lost).
    public mutating func next() throws(Failure) -> Frame? {
        if partial.isEmpty {
            guard input.count >= Limits.frameHeaderLength else {
                if !input.isEmpty { moveInputToPartial(upTo: Limits.frameHeaderLength) }
                return nil
            }
            let header = try Self.parseHeader(input.prefix(Limits.frameHeaderLength))
            let frameLength = Limits.frameHeaderLength + header.length
            guard input.count >= frameLength else {
                partial.reserveCapacity(frameLength)
                moveInputToPartial(upTo: frameLength)
                return nil
            }
            let payloadStart = input.startIndex + Limits.frameHeaderLength
            let payload = input[payloadStart..<(payloadStart + header.length)]
            input = input[(payloadStart + header.length)...]
            releaseInputIfEmpty()
            return try Self.decodeBody(header, payload)
        }
        if partial.count < Limits.frameHeaderLength {
            moveInputToPartial(upTo: Limits.frameHeaderLength)
            guard partial.count == Limits.frameHeaderLength else { return nil }
        }
        let header = try Self.parseHeader(partial[0..<Limits.frameHeaderLength])
        let frameLength = Limits.frameHeaderLength + header.length
        partial.reserveCapacity(frameLength)
        moveInputToPartial(upTo: frameLength)
        guard partial.count == frameLength else { return nil }
        let frameBytes = partial
        partial = []
        return try Self.decodeBody(header, frameBytes[Limits.frameHeaderLength...])
    }

    /// Moves input bytes into `partial` until it holds `target` bytes or input runs out.
    private mutating func moveInputToPartial(upTo target: Int) {
        let take = min(target - partial.count, input.count)
        partial.append(contentsOf: input.prefix(take))
        input = input.dropFirst(take)
        releaseInputIfEmpty()
    }

    /// An empty slice still pins the caller's whole buffer; dropping it lets the caller reuse
    /// that buffer in place instead of copying it on its next write.
    private mutating func releaseInputIfEmpty() {
        if input.isEmpty { input = [] }
    }

    struct Header {
        var type: FrameType
        var flags: FrameFlags
        var length: Int
        var streamID: StreamID
    }

    /// Validates everything the header alone can tell; no state of the session is needed.
    static func parseHeader(_ bytes: ArraySlice<UInt8>) throws(Failure) -> Header {
        let base = bytes.startIndex
        guard let type = FrameType(rawValue: bytes[base]) else {
            throw Failure(.protocolError, "unknown frame type 0x\(String(bytes[base], radix: 16))")
        }
        let flags = FrameFlags(rawValue: bytes[base + 1])
        guard type.allowedFlags.isSuperset(of: flags) else {
            throw Failure(.protocolError, "\(type) frame with undefined flags 0x\(String(flags.rawValue, radix: 16))")
        }
        let length = Int(bytes[base + 2]) << 8 | Int(bytes[base + 3])
        guard type.payloadLengths.contains(length) else {
            throw Failure(.frameSizeError, "\(type) frame of \(length) bytes; allowed \(type.payloadLengths)")
        }
        let streamID = readUInt32(bytes, at: base + 4)
        guard streamID <= Limits.maxStreamID else {
            throw Failure(.protocolError, "stream ID \(streamID) has the reserved top bit set")
        }
        if type.isStreamFrame {
            guard streamID != 0 || type == .windowUpdate else {
                throw Failure(.protocolError, "\(type) frame on stream 0")
            }
        } else if streamID != 0 {
            throw Failure(.protocolError, "\(type) frame on stream \(streamID); it belongs to stream 0")
        }
        return Header(type: type, flags: flags, length: length, streamID: streamID)
    }

    static func decodeBody(_ header: Header, _ payload: ArraySlice<UInt8>) throws(Failure) -> Frame {
        let id = header.streamID
        let fin = header.flags.contains(.fin)
        let base = payload.startIndex
        switch header.type {
        case .hello:
            return .hello(
                HelloFrame(
                    minVersion: payload[base],
                    maxVersion: payload[base + 1],
                    maxConcurrentStreams: readUInt32(payload, at: base + 4),
                    initialStreamWindow: readUInt32(payload, at: base + 8),
                    connectionWindow: readUInt32(payload, at: base + 12)))
        case .open:
            return .open(id, metadata: payload, interactive: header.flags.contains(.interactive), fin: fin)
        case .accept:
            return .accept(id, metadata: payload, fin: fin)
        case .data:
            return .data(id, payload, fin: fin)
        case .windowUpdate:
            let increment = readUInt32(payload, at: base)
            guard increment != 0 else {
                throw Failure(.protocolError, "window update of 0 on stream \(id)")
            }
            return .windowUpdate(id, increment: increment)
        case .reset:
            return .reset(id, ErrorCode(rawValue: readUInt32(payload, at: base)))
        case .ping:
            let opaque = UInt64(readUInt32(payload, at: base)) << 32 | UInt64(readUInt32(payload, at: base + 4))
            return .ping(opaque: opaque, ack: header.flags.contains(.ack))
        case .goAway:
            let last = readUInt32(payload, at: base)
            guard last <= Limits.maxStreamID else {
                throw Failure(.protocolError, "go-away names stream \(last), above the largest stream ID")
            }
            return .goAway(
                lastStreamID: last, ErrorCode(rawValue: readUInt32(payload, at: base + 4)),
                message: payload[(base + 8)...])
        }
    }

    static func readUInt32(_ bytes: ArraySlice<UInt8>, at index: Int) -> UInt32 {
        UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8
            | UInt32(bytes[index + 3])
    }
}
