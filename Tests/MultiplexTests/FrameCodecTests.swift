import Testing

@testable import Multiplex

@Suite("Frame codec")
struct FrameCodecTests {
    static let sampleFrames: [Frame] = [
        .hello(
            HelloFrame(
                minVersion: 1, maxVersion: 1, maxConcurrentStreams: 100, initialStreamWindow: 262_144,
                connectionWindow: 1 << 26)),
        .open(1, metadata: Array("ssh".utf8)[...], interactive: true, fin: false),
        .open(3, metadata: [], interactive: false, fin: true),
        .accept(1, metadata: [1, 2, 3], fin: false),
        .accept(7, metadata: [], fin: true),
        .data(5, Array(repeating: 0xAB, count: Limits.maxDataPayload)[...], fin: false),
        .data(5, [], fin: true),
        .windowUpdate(0, increment: 1),
        .windowUpdate(9, increment: UInt32.max),
        .reset(11, .cancel),
        .reset(13, ErrorCode(rawValue: 0x1234)),
        .ping(opaque: 0x0102_0304_0506_0708, ack: false),
        .ping(opaque: .max, ack: true),
        .goAway(lastStreamID: Limits.maxStreamID, .noError, message: Array("bye".utf8)[...]),
    ]

    func decodeAll(_ bytes: [UInt8], chunk: Int) throws -> [Frame] {
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + chunk)
            decoder.append(bytes[index..<end])
            while let frame = try decoder.next() { frames.append(frame) }
            index = end
        }
        #expect(decoder.bufferedByteCount == 0)
        return frames
    }

    @Test("every frame type round-trips, whole and in every chunk size", arguments: [1, 2, 7, 8, 9, 100, 1 << 20])
    func roundTrip(chunk: Int) throws {
        let bytes = Self.sampleFrames.flatMap { FrameEncoder.encode($0) }
        let decoded = try decodeAll(bytes, chunk: chunk)
        #expect(decoded.count == Self.sampleFrames.count)
        for (got, want) in zip(decoded, Self.sampleFrames) {
            #expect(FrameEncoder.encode(got) == FrameEncoder.encode(want))
        }
    }

    @Test("the header layout is big-endian type, flags, length, stream ID")
    func headerLayout() {
        let bytes = FrameEncoder.encode(.data(0x0102_0304, [9, 9, 9][...], fin: true))
        #expect(bytes == [0x03, 0x01, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 9, 9, 9])
    }

    static func header(type: UInt8, flags: UInt8 = 0, length: Int, stream: UInt32) -> [UInt8] {
        [
            type, flags, UInt8(length >> 8), UInt8(length & 0xFF),
            UInt8(stream >> 24), UInt8((stream >> 16) & 0xFF), UInt8((stream >> 8) & 0xFF), UInt8(stream & 0xFF),
        ]
    }

    /// Every malformed header is refused from its 8 bytes alone, before any payload is buffered.
    @Test(
        "malformed headers are refused with the right code",
        arguments: [
            (header(type: 0x8, length: 0, stream: 1), ErrorCode.protocolError), // unknown type
            (header(type: 0x3, flags: 0x2, length: 0, stream: 1), .protocolError), // undefined flag on DATA
            (header(type: 0x6, flags: 0x2, length: 8, stream: 0), .protocolError), // undefined flag on PING
            (header(type: 0x3, length: Limits.maxDataPayload + 1, stream: 1), .frameSizeError),
            (header(type: 0x3, length: 0xFFFF, stream: 1), .frameSizeError),
            (header(type: 0x1, length: Limits.maxMetadataLength + 1, stream: 1), .frameSizeError),
            (header(type: 0x2, length: Limits.maxMetadataLength + 1, stream: 2), .frameSizeError),
            (header(type: 0x4, length: 3, stream: 1), .frameSizeError),
            (header(type: 0x4, length: 5, stream: 1), .frameSizeError),
            (header(type: 0x5, length: 0, stream: 1), .frameSizeError),
            (header(type: 0x6, length: 7, stream: 0), .frameSizeError),
            (header(type: 0x7, length: 8 + Limits.maxGoAwayMessage + 1, stream: 0), .frameSizeError),
            (header(type: 0x0, length: 15, stream: 0), .frameSizeError),
            (header(type: 0x0, length: Limits.maxHelloPayload + 1, stream: 0), .frameSizeError),
            (header(type: 0x3, length: 0, stream: 0), .protocolError), // DATA on stream 0
            (header(type: 0x1, length: 0, stream: 0), .protocolError), // OPEN on stream 0
            (header(type: 0x5, length: 4, stream: 0), .protocolError), // RESET on stream 0
            (header(type: 0x6, length: 8, stream: 1), .protocolError), // PING on a stream
            (header(type: 0x7, length: 8, stream: 3), .protocolError), // GOAWAY on a stream
            (header(type: 0x0, length: 16, stream: 1), .protocolError), // HELLO on a stream
            (header(type: 0x3, length: 0, stream: 0x8000_0001), .protocolError), // reserved top bit
        ])
    func malformedHeader(bytes: [UInt8], code: ErrorCode) {
        var decoder = FrameDecoder()
        decoder.append(bytes[...])
        #expect(throws: Failure.self) { _ = try decoder.next() }
        do {
            _ = try decoder.next()
        } catch {
            #expect(error.code == code)
        }
    }

    @Test("a window update of zero is a protocol error")
    func zeroIncrement() {
        var decoder = FrameDecoder()
        decoder.append((Self.header(type: 0x4, length: 4, stream: 1) + [0, 0, 0, 0])[...])
        #expect(throws: Failure(.protocolError, "window update of 0 on stream 1")) { _ = try decoder.next() }
    }

    @Test("a go-away naming a stream above 2^31-1 is a protocol error")
    func goAwayTopBit() {
        var decoder = FrameDecoder()
        decoder.append((Self.header(type: 0x7, length: 8, stream: 0) + [0x80, 0, 0, 0, 0, 0, 0, 0])[...])
        #expect(throws: Failure.self) { _ = try decoder.next() }
    }

    @Test("a frame split across chunks is held only up to its own length")
    func partialFrameIsBounded() throws {
        var decoder = FrameDecoder()
        let frame = FrameEncoder.encode(.data(1, Array(repeating: 1, count: Limits.maxDataPayload)[...], fin: false))
        decoder.append(frame[0..<100])
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 100)
        decoder.append(frame[100...] + [3])
        let decoded = try #require(try decoder.next())
        #expect(FrameEncoder.encode(decoded) == frame)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 1)
    }

    @Test("a frame that arrives whole is handed on without a copy")
    func wholeFrameIsASlice() throws {
        var decoder = FrameDecoder()
        let bytes =
            FrameEncoder.encode(.data(1, [1, 2, 3, 4][...], fin: false))
            + FrameEncoder.encode(.data(1, [5, 6][...], fin: false))
        decoder.append(bytes[...])
        _ = try decoder.next()
        guard case .data(_, let payload, _) = try decoder.next() else {
            Issue.record("expected DATA")
            return
        }
        #expect(payload.startIndex == 8 + 4 + 8)
        #expect(Array(payload) == [5, 6])
    }
}
