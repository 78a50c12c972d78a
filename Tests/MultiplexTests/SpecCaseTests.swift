import Testing

@testable import Multiplex

/// The cases `docs/PROTOCOL.md` used to leave to guesswork (issue 9, item 11), each pinned to the
/// behaviour the spec now states.
@Suite("Cases the spec settles")
struct SpecCaseTests {
    @Test("ACCEPT for a stream we opened and that is closed is ignored (§5.1)")
    func acceptOnOurClosedStream() throws {
        let peer = RawPeer(role: .dialer)
        let id = try peer.session.openStream(metadata: [])
        peer.readOutput()
        peer.session.reset(id)
        peer.send(.accept(id, metadata: [], fin: false))
        #expect(peer.closure == nil)
    }

    @Test("ACCEPT naming a stream the peer opened is a protocol error even once that stream closed (§5.1)")
    func acceptOfPeersOwnStream() {
        let peer = RawPeer(role: .acceptor)
        peer.send(.open(1, metadata: [], interactive: false, fin: false))
        peer.session.reset(1)
        peer.send(.accept(1, metadata: [], fin: false))
        #expect(peer.closure?.code == .protocolError)
    }

    @Test(
        "a header that breaks several rules gets the code of the first check (§2)",
        arguments: [
            // Unknown type 0x9 with an undefined flag and a huge length: the type is checked first.
            ([0x09, 0xFF, 0xFF, 0xFF, 0x80, 0, 0, 1], ErrorCode.protocolError),
            // DATA with an undefined flag and a length above 16 KiB: flags before length.
            ([0x03, 0x04, 0x40, 0x01, 0, 0, 0, 1], .protocolError),
            // PING of 9 bytes on stream 5: length before the stream rule.
            ([0x06, 0x00, 0x00, 0x09, 0, 0, 0, 5], .frameSizeError),
            // DATA of 16 KiB + 1 with the reserved bit set: length before the reserved bit.
            ([0x03, 0x00, 0x40, 0x01, 0x80, 0, 0, 1], .frameSizeError),
            // RESET on stream 0 with the reserved bit: the reserved bit before the stream rule (same code).
            ([0x05, 0x00, 0x00, 0x04, 0x80, 0, 0, 0], .protocolError),
        ] as [([UInt8], ErrorCode)])
    func headerRuleOrder(bytes: [UInt8], code: ErrorCode) {
        var decoder = FrameDecoder()
        decoder.append(bytes[...])
        do {
            _ = try decoder.next()
            Issue.record("the header was accepted")
        } catch {
            #expect(error.code == code)
        }
    }

    @Test("a zero WINDOW_UPDATE is a protocol error on any stream, closed ones included (§3)")
    func zeroWindowUpdateOnClosedStream() {
        let peer = RawPeer(role: .acceptor)
        peer.send(.open(1, metadata: [], interactive: false, fin: false))
        peer.session.reset(1)
        peer.send(.windowUpdate(1, increment: 0))
        #expect(peer.closure?.code == .protocolError)
    }

    @Test("an abortive GOAWAY is not answered (§7.3)")
    func abortiveGoAwayUnanswered() throws {
        let peer = RawPeer(role: .dialer)
        peer.readOutput()
        let before = peer.sent.count
        peer.send(.goAway(lastStreamID: 0, .internalError, message: []))
        #expect(peer.closure?.code == .internalError)
        #expect(peer.sent.count == before, "nothing at all is sent after an abortive GOAWAY")
    }

    @Test("a graceful GOAWAY is not answered with one either, unless we go away ourselves")
    func gracefulGoAwayUnanswered() {
        let peer = RawPeer(role: .dialer)
        peer.readOutput()
        peer.send(.goAway(lastStreamID: 0, .noError, message: []))
        #expect(peer.sentGoAway == nil)
    }

    @Test("a HELLO whose minimum version is above its maximum is a protocol error (§4)")
    func helloRangeInverted() {
        let peer = RawPeer(
            hello: .hello(
                HelloFrame(
                    minVersion: 2, maxVersion: 1, maxConcurrentStreams: 1, initialStreamWindow: 1, connectionWindow: 1))
        )
        #expect(peer.closure?.code == .protocolError)
    }

    @Test("before the first round-trip sample a window never grows (§6.3)")
    func noGrowthWithoutRoundTrip() {
        var window = ReceiveWindow(initial: 65_536, max: 1 << 24)
        let start = Timestamp(nanoseconds: 1_000_000_000)
        for step in 0..<10 {
            try? window.receive(65_536)
            window.consume(65_536)
            _ = window.takeUpdate(now: start + .microseconds(step), roundTrip: nil)
        }
        #expect(window.window == 65_536)
        // The same rhythm with a 50 ms round trip known doubles it every update.
        try? window.receive(65_536)
        window.consume(65_536)
        _ = window.takeUpdate(now: start + .microseconds(20), roundTrip: .milliseconds(50))
        #expect(window.window == 131_072)
    }

    @Test("a GOAWAY message that is not UTF-8 is shown with U+FFFD for each bad sequence (§3)")
    func goAwayMessageNotUTF8() {
        let peer = RawPeer(role: .dialer)
        peer.send(.goAway(lastStreamID: 0, .internalError, message: [0x6F, 0x6B, 0xFF, 0xC3][...]))
        #expect(peer.closure == Failure(.internalError, "peer is going away: ok\u{FFFD}\u{FFFD}"))
    }
}
