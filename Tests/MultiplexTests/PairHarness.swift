@testable import Multiplex

/// A deterministic random generator (SplitMix64), so every random test replays from its seed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// 64 KiB of varied bytes; a stream's content is this table read from an offset of its own.
let patternTable: [UInt8] = {
    var random = SeededRandom(seed: 0x7E57)
    return (0..<65_536).map { _ in UInt8(truncatingIfNeeded: random.next()) }
}()

/// The byte at `offset` of the stream `id`: lets a receiver check order and completeness
/// without keeping a copy of what was sent.
func patternByte(stream id: StreamID, offset: Int) -> UInt8 {
    patternTable[(offset &+ Int(id) &* 4099) & 0xFFFF]
}

func pattern(stream id: StreamID, from offset: Int, count: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    var position = (offset &+ Int(id) &* 4099) & 0xFFFF
    var remaining = count
    while remaining > 0 {
        let take = min(remaining, 65_536 - position)
        bytes.append(contentsOf: patternTable[position..<(position + take)])
        remaining -= take
        position = 0
    }
    return bytes
}

/// How the wire between the two sessions cuts the byte stream.
enum Chunking {
    case whole
    case byteByByte
    case random(maxChunk: Int)
}

/// One end of the pair: its session plus what its application saw.
final class Peer {
    let session: Session
    var events: [SessionEvent] = []
    /// Bytes received per stream, checked against the pattern as they arrive.
    var received: [StreamID: Int] = [:]
    var finished: Set<StreamID> = []
    var resets: [StreamID: Failure] = [:]
    var opened: [StreamID] = []
    var closed: Failure?
    /// Whether the application hands received bytes on at once; false models a stalled reader.
    var consumesData = true
    /// Received and not yet consumed, per stream.
    var held: [StreamID: Int] = [:]
    /// Accept every stream the peer opens.
    var acceptsStreams = true
    var patternErrors: [String] = []
    /// Streams whose `write` asked the application to wait for `.writable`.
    var waiting: Set<StreamID> = []

    init(_ session: Session) { self.session = session }

    func drainEvents() {
        while let event = session.pollEvent() {
            events.append(event)
            switch event {
            case .streamOpened(let id, _, _):
                opened.append(id)
                if acceptsStreams { try? session.accept(id) }
            case .data(let id, let bytes):
                let offset = received[id, default: 0]
                if bytes.elementsEqual(pattern(stream: id, from: offset, count: bytes.count)) == false {
                    patternErrors.append("stream \(id) bytes from \(offset) are wrong")
                }
                received[id] = offset + bytes.count
                if consumesData {
                    session.consumed(bytes.count, on: id)
                } else {
                    held[id, default: 0] += bytes.count
                }
            case .finished(let id): finished.insert(id)
            case .streamReset(let id, let failure): resets[id] = failure
            case .closed(let failure): closed = failure
            case .writable(let id): waiting.remove(id)
            case .streamAccepted, .pong, .peerGoingAway: break
            }
        }
    }

    /// Delivers what the stalled application held.
    func consumeHeld() {
        for (id, count) in held { session.consumed(count, on: id) }
        held.removeAll()
    }
}

/// Two sessions back to back in memory on a virtual clock.
final class SessionPair {
    var now = Timestamp(nanoseconds: 1_000_000_000)
    let dialer: Peer
    let acceptor: Peer
    var chunking: Chunking
    var random: SeededRandom
    /// The budget of each `pollTransmit`, as a connection's queue room would be.
    var transmitBudget = 64 * 1024
    /// Largest number of bytes the receiver ever held unconsumed on one stream.
    var maxHeldPerStream = 0

    init(
        configuration: SessionConfiguration = SessionConfiguration(),
        acceptorConfiguration: SessionConfiguration? = nil,
        chunking: Chunking = .whole, seed: UInt64 = 1
    ) {
        dialer = Peer(Session(role: .dialer, configuration: configuration, now: now))
        acceptor = Peer(Session(role: .acceptor, configuration: acceptorConfiguration ?? configuration, now: now))
        self.chunking = chunking
        random = SeededRandom(seed: seed)
    }

    /// Moves bytes both ways until neither side has anything to send; returns the rounds taken.
    @discardableResult
    func pump(maxRounds: Int = 100_000) -> Int {
        for round in 0..<maxRounds {
            let moved = transfer(from: dialer, to: acceptor) + transfer(from: acceptor, to: dialer)
            dialer.drainEvents()
            acceptor.drainEvents()
            if moved == 0 { return round }
        }
        return maxRounds
    }

    func transfer(from sender: Peer, to receiver: Peer) -> Int {
        var wire: [UInt8] = []
        sender.session.pollTransmit(into: &wire, maxBytes: transmitBudget)
        deliver(wire, to: receiver)
        return wire.count
    }

    func deliver(_ wire: [UInt8], to receiver: Peer) {
        var index = 0
        while index < wire.count {
            let size: Int
            switch chunking {
            case .whole: size = wire.count
            case .byteByByte: size = 1
            case .random(let maxChunk): size = Int.random(in: 1...maxChunk, using: &random)
            }
            let end = min(wire.count, index + size)
            // A fresh array per chunk, as a transport's read buffer would be.
            receiver.session.receive(Array(wire[index..<end]), now: now)
            index = end
            receiver.drainEvents()
            for (_, held) in receiver.held { maxHeldPerStream = max(maxHeldPerStream, held) }
        }
    }

    func advance(by duration: Duration) {
        now = now + duration
        dialer.session.advanceTime(to: now)
        acceptor.session.advanceTime(to: now)
        dialer.drainEvents()
        acceptor.drainEvents()
    }
}
