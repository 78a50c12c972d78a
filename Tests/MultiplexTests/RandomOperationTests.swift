import Testing

@testable import Multiplex

/// Thousands of random operation sequences from a fixed seed. A failure names the sequence;
/// rerun it alone with `sequence(_:debug: true)` to see its operations and events.
@Suite("Random operation sequences")
struct RandomOperationTests {
    static let baseSeed: UInt64 = 0x5EED_2026
    static let sequenceCount = 10_000

    /// What the test itself knows about one stream, to check the sessions against.
    struct StreamModel {
        var opener: Peer
        var acceptor: Peer
        var sent: [ObjectIdentifier: Int] = [:]
        var finishedBy: Set<ObjectIdentifier> = []
        var wasReset = false
    }

    static let batches = 20

    @Test("10,000 random sequences keep every invariant", arguments: 0..<batches)
    func manySequences(batch: Int) {
        var failures: [String] = []
        let perBatch = Self.sequenceCount / Self.batches
        for index in (batch * perBatch)..<((batch + 1) * perBatch) {
            if let failure = Self.sequence(index) { failures.append("sequence \(index): \(failure)") }
            if failures.count >= 5 { break }
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// Runs one sequence; returns a description of the first broken invariant, or nil.
    static func sequence(_ index: Int, debug: Bool = false) -> String? {
        var random = SeededRandom(seed: baseSeed &+ UInt64(index) &* 0x9E37_79B9)
        var configuration = SessionConfiguration()
        configuration.initialStreamWindow = [16_384, 65_536, 262_144].randomElement(using: &random)!
        configuration.maxStreamWindow = configuration.initialStreamWindow * 4
        configuration.connectionWindow = [32_768, 200_000, 1 << 26].randomElement(using: &random)!
        configuration.sendBufferLimit = [1, 20_000, 256 * 1024].randomElement(using: &random)!
        configuration.maxConcurrentStreams = [1, 3, 100].randomElement(using: &random)!
        let chunking: Chunking = [.whole, .byteByByte, .random(maxChunk: 700)].randomElement(using: &random)!
        let pair = SessionPair(configuration: configuration, chunking: chunking, seed: random.next())
        let peers = [pair.dialer, pair.acceptor]
        var models: [StreamID: StreamModel] = [:]

        for _ in 0..<Int.random(in: 5...40, using: &random) {
            let actor = peers.randomElement(using: &random)!
            let other = actor === pair.dialer ? pair.acceptor : pair.dialer
            let live = models.filter { !$0.value.wasReset && actor.session.state(of: $0.key) != .closed }.keys.sorted()
            let op = Int.random(in: 0..<100, using: &random)
            if debug { print("op \(op) by \(actor === pair.dialer ? "dialer" : "acceptor") live \(live)") }
            switch op {
            case 0..<15:
                if actor.session.canOpenStream,
                    let id = try? actor.session.openStream(
                        metadata: [UInt8(index & 0xFF)], interactive: random.next() & 1 == 0)
                {
                    models[id] = StreamModel(opener: actor, acceptor: other)
                }
            case 15..<50:
                guard let id = live.randomElement(using: &random), !actor.waiting.contains(id),
                    actor.session.state(of: id).canSend,
                    models[id]!.finishedBy.contains(ObjectIdentifier(actor)) == false
                else { break }
                let size =
                    random.next() % 20 == 0
                    ? Int.random(in: 0...40_000, using: &random) : Int.random(in: 0...1500, using: &random)
                let offset = models[id]!.sent[ObjectIdentifier(actor), default: 0]
                do {
                    if try !actor.session.write(pattern(stream: id, from: offset, count: size), on: id) {
                        actor.waiting.insert(id)
                    }
                    models[id]!.sent[ObjectIdentifier(actor)] = offset + size
                } catch {
                    return "write on \(id) refused: \(error)"
                }
            case 50..<60:
                guard let id = live.randomElement(using: &random), actor.session.state(of: id).canSend,
                    !models[id]!.finishedBy.contains(ObjectIdentifier(actor))
                else { break }
                do {
                    try actor.session.finish(id)
                    models[id]!.finishedBy.insert(ObjectIdentifier(actor))
                } catch {
                    return "finish on \(id) refused: \(error)"
                }
            case 60..<63:
                guard let id = live.randomElement(using: &random) else { break }
                actor.session.reset(id)
                models[id]!.wasReset = true
            case 63..<70:
                actor.consumesData.toggle()
                if actor.consumesData { actor.consumeHeld() }
            case 70..<90:
                let moved = pair.transfer(from: actor, to: other)
                if debug {
                    print(
                        "moved \(moved) closed \(String(describing: actor.session.closure)) other \(String(describing: other.session.closure))"
                    )
                }
                pair.dialer.drainEvents()
                pair.acceptor.drainEvents()
            case 90..<98:
                pair.advance(by: .milliseconds(Int64.random(in: 0...4000, using: &random)))
            default:
                if random.next() % 4 == 0 { actor.session.goAway() }
            }
            for peer in peers {
                for (id, _) in peer.resets { models[id]?.wasReset = true }
            }
            if pair.maxHeldPerStream > Int(configuration.maxStreamWindow) {
                return "receiver held \(pair.maxHeldPerStream) bytes, above the window"
            }
            if let error = (pair.dialer.patternErrors + pair.acceptor.patternErrors).first { return error }
        }

        // Let everything settle: readers catch up, the wire drains.
        for peer in peers {
            peer.consumesData = true
            peer.consumeHeld()
        }
        pair.pump()
        if debug { print("dialer", pair.dialer.events, "\nacceptor", pair.acceptor.events) }
        for peer in peers {
            for (id, _) in peer.resets { models[id]?.wasReset = true }
            if let closed = peer.closed, closed.code != .noError { return "session closed with \(closed)" }
            for (id, failure) in peer.resets where failure.code != .cancel && failure.code != .refusedStream {
                return "stream \(id) reset with \(failure)"
            }
        }
        if let error = (pair.dialer.patternErrors + pair.acceptor.patternErrors).first { return error }
        for (id, model) in models.sorted(by: { $0.key < $1.key }) where !model.wasReset {
            for (writer, reader) in [(model.opener, model.acceptor), (model.acceptor, model.opener)] {
                let sent = model.sent[ObjectIdentifier(writer), default: 0]
                let got = reader.received[id, default: 0]
                if got != sent { return "stream \(id): \(sent) bytes sent, \(got) received" }
                if model.finishedBy.contains(ObjectIdentifier(writer)) != reader.finished.contains(id) {
                    return
                        "stream \(id): FIN sent \(model.finishedBy.contains(ObjectIdentifier(writer))), seen \(reader.finished.contains(id))"
                }
            }
        }
        return nil
    }
}
