import Testing

@testable import Multiplex

/// A session under test facing a hand-driven peer that writes raw frames.
final class RawPeer {
    var now = Timestamp(nanoseconds: 1_000_000_000)
    let session: Session
    var events: [SessionEvent] = []
    /// Everything the session sent, decoded.
    var sent: [Frame] = []
    private var decoder = FrameDecoder()

    static let hello = Frame.hello(
        HelloFrame(
            minVersion: 1, maxVersion: 1, maxConcurrentStreams: 100, initialStreamWindow: 262_144,
            connectionWindow: 1 << 26))

    init(
        role: Role = .acceptor, configuration: SessionConfiguration = SessionConfiguration(),
        hello: Frame? = RawPeer.hello
    ) {
        session = Session(role: role, configuration: configuration, now: now)
        if let hello { send(hello) }
    }

    func send(_ frames: Frame...) {
        send(frames)
    }

    func send(_ frames: [Frame], readReplies: Bool = true) {
        var bytes: [UInt8] = []
        for frame in frames { FrameEncoder.append(frame, to: &bytes) }
        session.receive(bytes, now: now)
        while let event = session.pollEvent() { events.append(event) }
        if readReplies { readOutput() }
    }

    func readOutput() {
        var wire: [UInt8] = []
        while session.pollTransmit(into: &wire) > 0 {}
        decoder.append(wire[...])
        while let frame = try? decoder.next() { sent.append(frame) }
    }

    var closure: Failure? { session.closure }

    var sentResets: [StreamID: ErrorCode] {
        var resets: [StreamID: ErrorCode] = [:]
        for case .reset(let id, let code) in sent { resets[id] = code }
        return resets
    }

    var sentGoAway: ErrorCode? {
        for case .goAway(_, let code, _) in sent { return code }
        return nil
    }
}

@Suite("A hostile peer")
struct HostilePeerTests {
    @Test("the first frame must be HELLO")
    func helloFirst() {
        let peer = RawPeer(hello: nil)
        peer.send(.ping(opaque: 1, ack: false))
        #expect(peer.closure?.code == .protocolError)
        #expect(peer.sentGoAway == .protocolError)
    }

    @Test("a GOAWAY instead of HELLO is a refusal the receiver can read")
    func refusalBeforeHello() {
        let peer = RawPeer(hello: nil)
        peer.send(.goAway(lastStreamID: 0, ErrorCode(rawValue: 0x105), message: Array("wrong role".utf8)[...]))
        #expect(peer.closure == Failure(ErrorCode(rawValue: 0x105), "peer is going away: wrong role"))
    }

    @Test("a session refused before it said HELLO sends only its GOAWAY")
    func refusingSendsNoHello() {
        let peer = RawPeer(hello: nil)
        peer.session.abort(ErrorCode(rawValue: 0x105), reason: "wrong role")
        peer.readOutput()
        #expect(peer.sent.count == 1)
        #expect(peer.sentGoAway == ErrorCode(rawValue: 0x105))
    }

    @Test("no common version ends the session with unsupported-version", arguments: [(UInt8(2), UInt8(3)), (0, 0)])
    func versionMismatch(min: UInt8, max: UInt8) {
        let peer = RawPeer(
            hello: .hello(
                HelloFrame(
                    minVersion: min, maxVersion: max, maxConcurrentStreams: 1, initialStreamWindow: 1,
                    connectionWindow: 1)))
        #expect(peer.closure?.code == .unsupportedVersion)
    }

    @Test("a peer that also speaks later versions settles on version 1")
    func versionRange() {
        let peer = RawPeer(
            hello: .hello(
                HelloFrame(
                    minVersion: 1, maxVersion: 9, maxConcurrentStreams: 1, initialStreamWindow: 1, connectionWindow: 1))
        )
        #expect(peer.closure == nil)
    }

    @Test("a second HELLO is a protocol error")
    func secondHello() {
        let peer = RawPeer()
        peer.send(RawPeer.hello)
        #expect(peer.closure?.code == .protocolError)
    }

    @Test("HELLO windows above 2^31-1 are refused")
    func helloWindowTooLarge() {
        let peer = RawPeer(
            hello: .hello(
                HelloFrame(
                    minVersion: 1, maxVersion: 1, maxConcurrentStreams: 1, initialStreamWindow: 1 << 31,
                    connectionWindow: 1)))
        #expect(peer.closure?.code == .flowControlError)
    }

    @Test("stream IDs must have the opener's parity and increase")
    func streamIDRules() {
        let wrongParity = RawPeer(role: .acceptor)
        wrongParity.send(.open(2, metadata: [], interactive: false, fin: false))
        #expect(wrongParity.closure?.code == .protocolError)

        let decreasing = RawPeer(role: .acceptor)
        decreasing.send(.open(5, metadata: [], interactive: false, fin: false))
        decreasing.send(.open(3, metadata: [], interactive: false, fin: false))
        #expect(decreasing.closure?.code == .protocolError)

        let duplicate = RawPeer(role: .acceptor)
        duplicate.send(.open(5, metadata: [], interactive: false, fin: false))
        duplicate.send(.open(5, metadata: [], interactive: false, fin: false))
        #expect(duplicate.closure?.code == .protocolError)
    }

    @Test(
        "frames for streams that were never opened are protocol errors",
        arguments: [
            Frame.data(7, [1][...], fin: false), .windowUpdate(7, increment: 1), .reset(7, .cancel),
            .accept(2, metadata: [], fin: false),
        ])
    func idleStreamFrames(frame: Frame) {
        let peer = RawPeer(role: .acceptor)
        peer.send(frame)
        #expect(peer.closure?.code == .protocolError)
    }

    @Test("the highest stream ID works; nothing above it can even be expressed")
    func peerAtIDExhaustion() {
        let peer = RawPeer(role: .acceptor)
        peer.send(.open(Limits.maxStreamID, metadata: [], interactive: false, fin: false))
        #expect(peer.closure == nil)
        #expect(peer.events.first == .streamOpened(Limits.maxStreamID, metadata: [], interactive: false))
        let bytes = FrameEncoder.encode(.open(Limits.maxStreamID, metadata: [], interactive: false, fin: false))
        var above = bytes
        above[4] = 0x80
        above[7] = 0x01
        peer.session.receive(above, now: peer.now)
        #expect(peer.closure?.code == .protocolError)
    }

    @Test("our own stream IDs end in a go-away, never a wrap")
    func localIDExhaustion() throws {
        let peer = RawPeer(role: .dialer)
        peer.session.nextLocalStreamID = Limits.maxStreamID - 2
        let last = try peer.session.openStream(metadata: [])
        let reallyLast = try peer.session.openStream(metadata: [])
        #expect([last, reallyLast] == [Limits.maxStreamID - 2, Limits.maxStreamID])
        #expect(throws: MultiplexError.streamIDsExhausted) { try peer.session.openStream(metadata: []) }
        peer.readOutput()
        #expect(peer.sentGoAway == .noError)
        #expect(peer.session.isGoingAway)
        #expect(!peer.session.canOpenStream)
    }

    @Test("data beyond the stream window or the connection window ends the session")
    func dataBeyondWindow() {
        var configuration = SessionConfiguration()
        configuration.initialStreamWindow = 16_384
        configuration.connectionWindow = 16_384
        let streamLevel = RawPeer(role: .acceptor, configuration: configuration)
        streamLevel.send(.open(1, metadata: [], interactive: false, fin: false))
        streamLevel.send(.data(1, Array(repeating: 0, count: 16_384)[...], fin: false))
        #expect(streamLevel.closure == nil)
        streamLevel.send(.data(1, [0][...], fin: false))
        #expect(streamLevel.closure?.code == .flowControlError)

        // Two streams, each within its own window, together beyond the connection's.
        let connectionLevel = RawPeer(role: .acceptor, configuration: configuration)
        connectionLevel.send(
            .open(1, metadata: [], interactive: false, fin: false),
            .open(3, metadata: [], interactive: false, fin: false))
        connectionLevel.send(.data(1, Array(repeating: 0, count: 16_384)[...], fin: false))
        #expect(connectionLevel.closure == nil)
        connectionLevel.send(.data(3, [0][...], fin: false))
        #expect(connectionLevel.closure?.code == .flowControlError)
    }

    @Test("a window update that overflows 2^31-1 ends the session")
    func windowOverflowFromWire() throws {
        let peer = RawPeer(role: .dialer)
        let id = try peer.session.openStream(metadata: [])
        peer.readOutput()
        peer.send(.windowUpdate(id, increment: UInt32(Limits.maxWindow) - 262_144))
        #expect(peer.closure == nil)
        #expect(peer.session.sendCredit(of: id) == Limits.maxWindow)
        peer.send(.windowUpdate(id, increment: 1))
        #expect(peer.closure?.code == .flowControlError)
    }

    @Test("DATA before ACCEPT from the acceptor is a protocol error")
    func dataBeforeAccept() throws {
        let peer = RawPeer(role: .dialer)
        let id = try peer.session.openStream(metadata: [])
        peer.readOutput()
        peer.send(.data(id, [1][...], fin: false))
        #expect(peer.closure?.code == .protocolError)
    }

    @Test("DATA after the peer's FIN resets only that stream")
    func dataAfterFin() throws {
        let peer = RawPeer(role: .acceptor)
        peer.send(.open(1, metadata: [], interactive: false, fin: false))
        try peer.session.accept(1)
        peer.send(.data(1, [1][...], fin: true), .data(1, [2][...], fin: false))
        #expect(peer.closure == nil)
        #expect(peer.sentResets[1] == .streamClosed)
        #expect(peer.events.contains(.streamReset(1, Failure(.streamClosed, "DATA after the peer finished stream 1"))))
    }

    @Test("opens beyond the advertised cap are refused; the connection lives on")
    func concurrencyCap() {
        let peer = RawPeer(role: .acceptor)
        let frames = (0..<101).map { Frame.open(StreamID(2 * $0 + 1), metadata: [], interactive: false, fin: false) }
        peer.send(frames)
        #expect(peer.closure == nil)
        #expect(peer.session.streamCount == 100)
        #expect(peer.sentResets == [201: .refusedStream])
    }

    @Test("we never open more streams than the peer allows")
    func localCap() throws {
        let peer = RawPeer(
            role: .dialer,
            hello: .hello(
                HelloFrame(
                    minVersion: 1, maxVersion: 1, maxConcurrentStreams: 2, initialStreamWindow: 65_536,
                    connectionWindow: 65_536)))
        _ = try peer.session.openStream(metadata: [])
        _ = try peer.session.openStream(metadata: [])
        #expect(throws: MultiplexError.streamLimitReached(2)) { try peer.session.openStream(metadata: []) }
    }

    @Test("streams opened before the peer's HELLO wait for it, and those above its cap are refused")
    func opensBeforeHello() throws {
        let peer = RawPeer(role: .dialer, hello: nil)
        let ids = try (0..<3).map { _ in try peer.session.openStream(metadata: []) }
        peer.readOutput()
        #expect(!peer.sent.contains { if case .open = $0 { true } else { false } })
        peer.send(
            .hello(
                HelloFrame(
                    minVersion: 1, maxVersion: 1, maxConcurrentStreams: 2, initialStreamWindow: 65_536,
                    connectionWindow: 65_536)))
        #expect(
            peer.events.contains(
                .streamReset(ids[2], Failure(.refusedStream, "the peer allows only 2 concurrent streams"))))
        let opens = peer.sent.compactMap { if case .open(let id, _, _, _) = $0 { id } else { nil } }
        #expect(opens == Array(ids.prefix(2)))
    }

    @Test("open metadata above 4 KiB is refused locally")
    func metadataLimit() {
        let peer = RawPeer(role: .dialer)
        #expect(throws: MultiplexError.metadataTooLong(4097)) {
            try peer.session.openStream(metadata: Array(repeating: 0, count: 4097))
        }
    }

    @Test("rapid open-and-reset cycles close the connection with enhance-your-calm")
    func rapidReset() {
        let peer = RawPeer(role: .acceptor)
        var id: StreamID = 1
        for _ in 0..<201 where peer.closure == nil {
            peer.send(.open(id, metadata: [], interactive: false, fin: false), .reset(id, .cancel))
            id += 2
        }
        #expect(peer.closure?.code == .enhanceYourCalm)
        #expect(peer.sentGoAway == .enhanceYourCalm)
    }

    @Test("resets spread over time, or among completed streams, are tolerated")
    func resetsThatAreFine() throws {
        let slow = RawPeer(role: .acceptor)
        var id: StreamID = 1
        for _ in 0..<1000 {
            slow.send(.open(id, metadata: [], interactive: false, fin: false), .reset(id, .cancel))
            id += 2
            slow.now = slow.now + .milliseconds(100)
        }
        #expect(slow.closure == nil)

        let busy = RawPeer(role: .acceptor)
        id = 1
        for _ in 0..<1000 {
            busy.send(.open(id, metadata: [], interactive: false, fin: true))
            try busy.session.accept(id)
            try busy.session.finish(id)
            busy.readOutput()
            busy.send(.open(id + 2, metadata: [], interactive: false, fin: false), .reset(id + 2, .cancel))
            id += 4
        }
        #expect(busy.closure == nil)
    }

    @Test("a ping flood from a peer that does not read our replies ends the session")
    func pingFloodWithoutReading() {
        var configuration = SessionConfiguration()
        configuration.maxIdleFramesPerWindow = 1_000_000
        let peer = RawPeer(configuration: configuration)
        let pings = (0..<2000).map { Frame.ping(opaque: UInt64($0), ack: false) }
        peer.send(pings, readReplies: false)
        #expect(peer.closure?.code == .enhanceYourCalm)
    }

    @Test("floods of frames that carry nothing end the session", arguments: ["ping", "empty data", "window update"])
    func idleFloods(kind: String) throws {
        let peer = RawPeer(role: .acceptor)
        peer.send(.open(1, metadata: [], interactive: false, fin: false))
        try peer.session.accept(1)
        let frame: Frame =
            switch kind {
            case "ping": .ping(opaque: 7, ack: false)
            case "empty data": .data(1, [], fin: false)
            default: .windowUpdate(1, increment: 1)
            }
        for _ in 0..<1100 where peer.closure == nil { peer.send(frame) }
        #expect(peer.closure?.code == .enhanceYourCalm)
    }

    @Test("keepalive traffic of a healthy peer never counts as a flood")
    func normalPingsAreFine() {
        let peer = RawPeer()
        for index in 0..<500 {
            peer.send(.ping(opaque: UInt64(index), ack: false))
            peer.now = peer.now + .milliseconds(100)
        }
        #expect(peer.closure == nil)
    }

    @Test("frames racing our reset are dropped, and their connection credit comes back")
    func framesAfterLocalReset() throws {
        var configuration = SessionConfiguration()
        configuration.connectionWindow = 65_536
        configuration.initialStreamWindow = 65_536
        let peer = RawPeer(role: .acceptor, configuration: configuration)
        peer.send(.open(1, metadata: [], interactive: false, fin: false))
        peer.session.reset(1)
        for _ in 0..<20 {
            peer.send(.data(1, Array(repeating: 0, count: 16_384)[...], fin: false))
        }
        #expect(peer.closure == nil, "20 × 16 KiB over a 64 KiB connection window only works if credit returns")
        let updates = peer.sent.filter { if case .windowUpdate(0, _) = $0 { true } else { false } }
        #expect(!updates.isEmpty)
    }

    @Test("a session that goes away before the peer's HELLO still says so")
    func goAwayBeforeHello() throws {
        let peer = RawPeer(role: .acceptor, hello: nil)
        let id = try peer.session.openStream(metadata: [])
        peer.session.reset(id)
        peer.session.goAway()
        peer.readOutput()
        #expect(peer.closure?.code == .noError)
        #expect(peer.sentGoAway == .noError)
        #expect(!peer.sent.contains { if case .open = $0 { true } else { false } })
    }

    @Test("a go-away may lower its last stream but never raise it")
    func goAwayOnlyLowers() {
        let peer = RawPeer(role: .dialer)
        peer.send(.goAway(lastStreamID: 9, .noError, message: []))
        peer.send(.goAway(lastStreamID: 3, .noError, message: []))
        #expect(peer.closure?.code == .noError, "no streams: the session drains at once")
        let raising = RawPeer(role: .dialer)
        _ = try? raising.session.openStream(metadata: [])
        raising.readOutput()
        raising.send(.goAway(lastStreamID: 1, .noError, message: []))
        raising.send(.goAway(lastStreamID: 9, .noError, message: []))
        #expect(raising.closure?.code == .protocolError)
    }

    @Test("a go-away with an error code ends the session and every stream")
    func abortiveGoAway() throws {
        let peer = RawPeer(role: .dialer)
        let id = try peer.session.openStream(metadata: [])
        peer.send(.goAway(lastStreamID: 0, .internalError, message: Array("disk full".utf8)[...]))
        #expect(peer.closure == Failure(.internalError, "peer is going away: disk full"))
        #expect(peer.events.contains(.streamReset(id, Failure(.internalError, "peer is going away: disk full"))))
    }
}
