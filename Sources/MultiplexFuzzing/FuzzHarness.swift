#if !MULTIPLEX_SINGLE_MODULE
    import Multiplex
#endif

/// The bodies of the fuzz targets, shared by the libFuzzer entry points in `Fuzz/` and by the
/// tests that replay the seed corpus and every committed crasher. Each returns a description of
/// the first broken invariant, or nil; a crash is a finding too.
public enum FuzzHarness {
    /// Feeds arbitrary bytes to a frame decoder in chunks whose sizes come from the input itself.
    /// Invariants: the decoder never holds more than one maximal frame, and every frame it returns
    /// encodes back to the same bytes (HELLO aside: its reserved and trailing bytes are ignored).
    public static func decodeFrames(_ input: [UInt8]) -> String? {
        guard let first = input.first else { return nil }
        let chunkSize = Int(first) + 1
        let wire = input.dropFirst()
        var decoder = FrameDecoder()
        var index = wire.startIndex
        var consumed = 0
        while index < wire.endIndex {
            let end = min(wire.endIndex, index + chunkSize)
            decoder.append(wire[index..<end])
            index = end
            do {
                while let frame = try decoder.next() {
                    let start = wire.startIndex + consumed
                    let length = Int(wire[start + 2]) << 8 | Int(wire[start + 3])
                    let original = wire[start..<(start + Limits.frameHeaderLength + length)]
                    if case .hello = frame {
                    } else if !original.elementsEqual(FrameEncoder.encode(frame)) {
                        return "frame \(frame) does not encode back to the bytes it came from"
                    }
                    consumed += original.count
                }
            } catch {
                return nil // a refused frame ends the connection; nothing more to check
            }
            if decoder.bufferedByteCount > Limits.frameHeaderLength + Limits.maxFramePayload + chunkSize {
                return "decoder holds \(decoder.bufferedByteCount) bytes"
            }
        }
        return nil
    }

    /// Drives a whole session with hostile bytes: the first input byte picks the role and how the
    /// application behaves, the rest arrives as the peer's wire bytes (after a valid HELLO when
    /// bit 0 is set), cut into chunks, with time passing between them. The application accepts
    /// every stream, echoes data, and sometimes stops reading or resets.
    /// Invariants: everything the session sends is itself valid protocol, streams stay within the
    /// advertised cap, and the session never sends DATA beyond the credit the peer granted.
    public static func driveSession(_ input: [UInt8]) -> String? {
        guard let control = input.first else { return nil }
        var configuration = SessionConfiguration()
        configuration.maxConcurrentStreams = control & 0x08 != 0 ? 3 : 100
        configuration.initialStreamWindow = control & 0x10 != 0 ? 16_384 : 262_144
        configuration.connectionWindow = control & 0x10 != 0 ? 32_768 : 1 << 26
        configuration.maxPendingControlFrames = 64
        var now = Timestamp(nanoseconds: 1)
        let session = Session(role: control & 0x02 != 0 ? .dialer : .acceptor, configuration: configuration, now: now)
        let readsData = control & 0x04 == 0
        var peerBytes: [UInt8] = []
        if control & 0x01 != 0 {
            FrameEncoder.append(
                .hello(
                    HelloFrame(
                        minVersion: 1, maxVersion: 1, maxConcurrentStreams: 4,
                        initialStreamWindow: 32_768, connectionWindow: 65_536)), to: &peerBytes)
        }
        peerBytes.append(contentsOf: input.dropFirst())

        var outputDecoder = FrameDecoder()
        var output: [UInt8] = []
        var index = 0
        var step = 0
        if control & 0x20 != 0 { _ = try? session.openStream(metadata: [1, 2, 3], interactive: true) }
        while index < peerBytes.count {
            let chunk = 1 + Int(peerBytes[index]) % 97
            let end = min(peerBytes.count, index + chunk)
            session.receive(peerBytes[index..<end], now: now)
            index = end
            step += 1
            now = now + .milliseconds(Int64(peerBytes[end - 1]) * 40)
            session.advanceTime(to: now)
            answerEvents(of: session, resetting: step % 5 == 4, readsData: readsData)
            if session.streamCount > Int(configuration.maxConcurrentStreams) + 1 {
                return "\(session.streamCount) streams open, above the cap"
            }
            output.removeAll(keepingCapacity: true)
            session.pollTransmit(into: &output, maxBytes: 1 + Int(peerBytes[end - 1]) * 64)
            outputDecoder.append(output[...])
            do {
                while try outputDecoder.next() != nil {}
            } catch {
                return "the session sent an invalid frame: \(error)"
            }
            if session.connectionSendCredit < 0 { return "negative connection credit" }
        }
        return nil
    }

    /// The fuzzed application: accepts (or resets) each new stream, echoes data, finishes when
    /// the peer does.
    private static func answerEvents(of session: Session, resetting: Bool, readsData: Bool) {
        while let event = session.pollEvent() {
            switch event {
            case .streamOpened(let id, _, _):
                if resetting { session.reset(id) } else { try? session.accept(id) }
            case .data(let id, let bytes):
                if readsData { session.consumed(bytes.count, on: id) }
                _ = try? session.write(bytes, on: id)
            case .finished(let id):
                try? session.finish(id)
            default:
                break
            }
        }
    }
}
