import Testing

@testable import Multiplex

@Suite("Two sessions back to back")
struct SessionPairTests {
    static let chunkings: [Chunking] = [.whole, .byteByByte, .random(maxChunk: 3000)]

    /// Writes `count` pattern bytes on a stream in pieces, pumping whenever the stream asks to wait.
    func send(_ count: Int, on id: StreamID, from sender: Peer, pair: SessionPair, piece: Int = 50_000) throws {
        var offset = 0
        while offset < count {
            let size = min(piece, count - offset)
            let keepGoing = try sender.session.write(pattern(stream: id, from: offset, count: size), on: id)
            offset += size
            if !keepGoing { pair.pump() }
        }
    }

    @Test(
        "every byte of every stream arrives once and in order, however the wire is cut",
        arguments: [0, 1, 2])
    func exchange(chunkingIndex: Int) throws {
        let pair = SessionPair(chunking: Self.chunkings[chunkingIndex], seed: 42)
        let sizes = chunkingIndex == 1 ? [0, 1, 70_000] : [0, 1, 16_384, 16_385, 300_000, 1_000_000]
        var ids: [StreamID] = []
        for _ in sizes {
            ids.append(try pair.dialer.session.openStream(metadata: Array("svc".utf8)))
        }
        pair.pump()
        #expect(pair.acceptor.opened == ids)
        for (id, size) in zip(ids, sizes) {
            try send(size, on: id, from: pair.dialer, pair: pair)
            try send(size / 2, on: id, from: pair.acceptor, pair: pair)
            try pair.dialer.session.finish(id)
            try pair.acceptor.session.finish(id)
        }
        pair.pump()
        for (id, size) in zip(ids, sizes) {
            #expect(pair.acceptor.received[id, default: 0] == size)
            #expect(pair.dialer.received[id, default: 0] == size / 2)
            #expect(pair.acceptor.finished.contains(id) && pair.dialer.finished.contains(id))
        }
        #expect(pair.acceptor.patternErrors.isEmpty && pair.dialer.patternErrors.isEmpty)
        #expect(pair.dialer.session.streamCount == 0 && pair.acceptor.session.streamCount == 0)
        #expect(pair.dialer.resets.isEmpty && pair.acceptor.resets.isEmpty)
        #expect(pair.dialer.closed == nil && pair.acceptor.closed == nil)
    }

    @Test("a reader that stops reading stops the sender; nothing grows beyond the window")
    func stalledReader() throws {
        let pair = SessionPair()
        pair.acceptor.consumesData = false
        let id = try pair.dialer.session.openStream(metadata: [])
        var written = 0
        var refusedAt: Int?
        for _ in 0..<100 where refusedAt == nil {
            if try !pair.dialer.session.write(pattern(stream: id, from: written, count: 32_768), on: id) {
                refusedAt = written + 32_768
            }
            written += 32_768
            pair.pump()
        }
        let window = Int(pair.dialer.session.configuration.initialStreamWindow)
        let limit = pair.dialer.session.configuration.sendBufferLimit
        #expect(refusedAt != nil, "write must ask the application to wait")
        #expect(pair.acceptor.received[id] == window, "exactly one window crossed the wire")
        #expect(pair.maxHeldPerStream == window)
        #expect(pair.dialer.session.sendCredit(of: id) == 0)
        #expect(try #require(pair.dialer.session.queuedBytes(of: id)) <= limit + 32_768)
        // The reader catches up: the sender is told it may write again and everything arrives.
        pair.acceptor.consumeHeld()
        pair.acceptor.consumesData = true
        pair.pump()
        #expect(pair.dialer.events.contains(.writable(id)))
        #expect(pair.acceptor.received[id] == written)
        #expect(pair.acceptor.patternErrors.isEmpty)
    }

    @Test("after go-away no new streams appear, open ones drain, then the session closes cleanly")
    func gracefulGoAway() throws {
        let pair = SessionPair()
        let early = try pair.dialer.session.openStream(metadata: [])
        pair.pump()
        pair.acceptor.session.goAway(reason: "maintenance")
        pair.pump()
        #expect(
            pair.dialer.events.contains(
                .peerGoingAway(lastStreamID: early, Failure(.noError, "peer is going away: maintenance"))))
        #expect(throws: MultiplexError.goingAway) { try pair.dialer.session.openStream(metadata: []) }
        #expect(pair.acceptor.session.closure == nil, "a stream is still open")
        try send(100_000, on: early, from: pair.dialer, pair: pair)
        try pair.dialer.session.finish(early)
        try pair.acceptor.session.finish(early)
        pair.pump()
        #expect(pair.acceptor.received[early] == 100_000)
        #expect(pair.acceptor.closed?.code == .noError)
        #expect(pair.dialer.closed?.code == .noError)
        #expect(pair.acceptor.opened == [early])
    }

    @Test("streams the peer had not accepted when it went away are refused, safe to retry")
    func goAwayRefusesUnprocessed() throws {
        let pair = SessionPair()
        let first = try pair.dialer.session.openStream(metadata: [])
        pair.pump()
        let second = try pair.dialer.session.openStream(metadata: [])
        pair.acceptor.session.goAway()
        // The acceptor's GOAWAY (last = first) crosses the dialer's OPEN of `second`.
        _ = pair.transfer(from: pair.acceptor, to: pair.dialer)
        pair.dialer.drainEvents()
        #expect(pair.dialer.resets[second]?.code == .refusedStream)
        pair.pump()
        #expect(pair.acceptor.opened == [first])
    }

    @Test(
        "a peer that goes silent is declared dead after the configured misses, not before",
        arguments: [(15, 3), (5, 2), (1, 10)])
    func deadPeer(intervalSeconds: Int, misses: Int) throws {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .seconds(intervalSeconds)
        configuration.keepaliveMissLimit = misses
        let pair = SessionPair(configuration: configuration)
        pair.pump()
        let deadline = pair.now + .seconds(intervalSeconds * misses)
        // From here the link is cut: nothing is delivered, only time passes, deadline by deadline.
        var steps = 0
        while pair.dialer.closed == nil, steps < 1000, let next = pair.dialer.session.nextDeadline {
            pair.now = next
            pair.dialer.session.advanceTime(to: next)
            pair.dialer.drainEvents()
            steps += 1
        }
        #expect(pair.dialer.closed?.code == .keepaliveTimeout)
        #expect(pair.now == deadline)
        #expect(pair.dialer.resets.isEmpty)
    }

    @Test("a live peer survives an hour of keepalives, and pings measure the round trip")
    func livePeer() throws {
        let pair = SessionPair()
        pair.pump()
        for _ in 0..<240 {
            pair.advance(by: .seconds(15))
            pair.pump()
        }
        #expect(pair.dialer.closed == nil && pair.acceptor.closed == nil)
        let pongs = pair.dialer.events.filter { if case .pong = $0 { true } else { false } }
        #expect(pongs.count == 241)
        #expect(pair.dialer.session.roundTrip == .zero)
    }

    @Test("an interactive stream is not queued behind a bulk backlog")
    func interactivePriority() throws {
        let pair = SessionPair()
        let bulk = try pair.dialer.session.openStream(metadata: [])
        let shell = try pair.dialer.session.openStream(metadata: [], interactive: true)
        pair.pump()
        try pair.dialer.session.write(pattern(stream: bulk, from: 0, count: 200_000), on: bulk)
        try pair.dialer.session.write(pattern(stream: shell, from: 0, count: 10), on: shell)
        var wire: [UInt8] = []
        pair.dialer.session.pollTransmit(into: &wire, maxBytes: 1)
        var decoder = FrameDecoder()
        decoder.append(wire[...])
        let first = try #require(try decoder.next())
        #expect(first == .data(shell, pattern(stream: shell, from: 0, count: 10)[...], fin: false))
    }

    @Test("pollTransmit tells where the interactive frames end, so they can have a TLS record of their own")
    func urgentBytesEndAtTheFirstBulkFrame() throws {
        let pair = SessionPair()
        let bulk = try pair.dialer.session.openStream(metadata: [])
        let shell = try pair.dialer.session.openStream(metadata: [], interactive: true)
        pair.pump()
        try pair.dialer.session.write(pattern(stream: bulk, from: 0, count: 50_000), on: bulk)
        try pair.dialer.session.write(pattern(stream: shell, from: 0, count: 3), on: shell)
        var wire: [UInt8] = []
        var urgent = -1
        let count = pair.dialer.session.pollTransmit(into: &wire, maxBytes: 8_000, urgentBytes: &urgent)
        #expect(urgent == Limits.frameHeaderLength + 3 && count > urgent)
        var decoder = FrameDecoder()
        decoder.append(wire[..<urgent])
        #expect(try decoder.next() == .data(shell, pattern(stream: shell, from: 0, count: 3)[...], fin: false))
        #expect(try decoder.next() == nil)
        wire.removeAll()
        pair.dialer.session.pollTransmit(into: &wire, maxBytes: 8_000, urgentBytes: &urgent)
        #expect(urgent == 0)
    }

    @Test("bulk streams still get a turn while interactive ones keep sending")
    func bulkIsNotStarved() throws {
        let pair = SessionPair()
        let bulk = try pair.dialer.session.openStream(metadata: [])
        let shell = try pair.dialer.session.openStream(metadata: [], interactive: true)
        pair.pump()
        try pair.dialer.session.write(pattern(stream: bulk, from: 0, count: 100_000), on: bulk)
        try pair.dialer.session.write(pattern(stream: shell, from: 0, count: 200_000), on: shell)
        var wire: [UInt8] = []
        pair.dialer.session.pollTransmit(into: &wire, maxBytes: 100_000)
        var decoder = FrameDecoder()
        decoder.append(wire[...])
        var order: [StreamID] = []
        while let frame = try decoder.next() {
            if case .data(let id, _, _) = frame { order.append(id) }
        }
        let burstFrames = pair.dialer.session.configuration.interactiveBurst / Limits.maxDataPayload
        #expect(Array(order.prefix(burstFrames)) == Array(repeating: shell, count: burstFrames))
        #expect(order[burstFrames] == bulk)
    }

    @Test("round-robin shares the link between bulk streams frame by frame")
    func roundRobin() throws {
        let pair = SessionPair()
        let ids = try (0..<3).map { _ in try pair.dialer.session.openStream(metadata: []) }
        pair.pump()
        for id in ids { try pair.dialer.session.write(pattern(stream: id, from: 0, count: 60_000), on: id) }
        var wire: [UInt8] = []
        pair.dialer.session.pollTransmit(into: &wire, maxBytes: 6 * Limits.maxDataPayload)
        var decoder = FrameDecoder()
        decoder.append(wire[...])
        var order: [StreamID] = []
        while let frame = try decoder.next() {
            if case .data(let id, _, _) = frame { order.append(id) }
        }
        #expect(Array(order.prefix(6)) == ids + ids)
    }
}
