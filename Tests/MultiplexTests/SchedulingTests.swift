import Testing

@testable import Multiplex

/// Issue #12: the order and size of DATA frames when several streams wait to send.
@Suite struct SchedulingTests {
    /// The DATA frames (stream, payload length) that `pollTransmit` emits for `maxBytes`.
    private func dataFrames(_ session: Session, maxBytes: Int) throws -> [(StreamID, Int)] {
        var wire: [UInt8] = []
        session.pollTransmit(into: &wire, maxBytes: maxBytes)
        var decoder = FrameDecoder()
        decoder.append(wire[...])
        var frames: [(StreamID, Int)] = []
        while let frame = try decoder.next() {
            if case .data(let id, let payload, _) = frame { frames.append((id, payload.count)) }
        }
        return frames
    }

    @Test("backlogged bulk streams share the link byte for byte, however many there are")
    func bulkStreamsShareEqually() throws {
        let pair = SessionPair()
        let ids = try (0..<5).map { _ in try pair.dialer.session.openStream(metadata: []) }
        pair.pump()
        for id in ids { try pair.dialer.session.write(pattern(stream: id, from: 0, count: 200_000), on: id) }
        var sent: [StreamID: Int] = [:]
        for _ in 0..<8 {
            for (id, count) in try dataFrames(pair.dialer.session, maxBytes: 40_000) { sent[id, default: 0] += count }
        }
        let shares = ids.map { sent[$0, default: 0] }
        #expect(shares.max()! - shares.min()! <= Limits.maxDataPayload)
        #expect(shares.reduce(0, +) >= 8 * 40_000 - 8 * Limits.frameHeaderLength * 5)
    }

    @Test("a stream that starts late gets its turn at once, not after the others' backlog")
    func lateStreamJoinsTheRound() throws {
        let pair = SessionPair()
        let early = try (0..<3).map { _ in try pair.dialer.session.openStream(metadata: []) }
        let late = try pair.dialer.session.openStream(metadata: [])
        pair.pump()
        for id in early { try pair.dialer.session.write(pattern(stream: id, from: 0, count: 200_000), on: id) }
        _ = try dataFrames(pair.dialer.session, maxBytes: 5 * Limits.maxDataPayload)
        try pair.dialer.session.write(pattern(stream: late, from: 0, count: 200_000), on: late)
        let next = try dataFrames(pair.dialer.session, maxBytes: 4 * Limits.maxDataPayload).map(\.0)
        #expect(next.prefix(4).contains(late))
    }

    @Test("a short transmit budget gets short DATA frames (a slow link's queue stays short), never below 1 KiB")
    func framesAreCutToTheRoomLeft() throws {
        let pair = SessionPair()
        let bulk = try pair.dialer.session.openStream(metadata: [])
        pair.pump()
        try pair.dialer.session.write(pattern(stream: bulk, from: 0, count: 100_000), on: bulk)
        let small = try dataFrames(pair.dialer.session, maxBytes: 4096)
        #expect(small.map(\.1) == [4096 - Limits.frameHeaderLength])
        let tiny = try dataFrames(pair.dialer.session, maxBytes: 10)
        #expect(tiny.map(\.1) == [Session.minimumCut])
        let large = try dataFrames(pair.dialer.session, maxBytes: 64 * 1024)
        #expect(large.prefix(3).allSatisfy { $0.1 == Limits.maxDataPayload })
    }

    @Test("the cut keeps every byte in order: a bulk transfer pumped in small budgets arrives whole")
    func cutFramesDeliverEverything() throws {
        let pair = SessionPair(chunking: .random(maxChunk: 700), seed: 7)
        pair.transmitBudget = 3000
        let bulk = try pair.dialer.session.openStream(metadata: [])
        pair.pump()
        try pair.dialer.session.write(pattern(stream: bulk, from: 0, count: 300_000), on: bulk)
        try pair.dialer.session.finish(bulk)
        pair.pump()
        #expect(pair.acceptor.received[bulk] == 300_000 && pair.acceptor.patternErrors.isEmpty)
        #expect(pair.acceptor.finished.contains(bulk))
    }
}
