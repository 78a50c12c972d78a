import Multiplex
import Testing

/// The gateway's keepalive (`pingsOnlyWhenQuiet`): it answers its peers' pings and pings only
/// while streams are open or once a peer has gone quiet, and it still finds a dead peer within
/// `interval × misses` of the last frame heard (PROTOCOL.md §7.1). All on a virtual clock.
@Suite("Keepalive of a side that pings only when quiet")
struct QuietKeepaliveTests {
    private static func quiet(_ configuration: SessionConfiguration = SessionConfiguration()) -> SessionConfiguration {
        var quiet = configuration
        quiet.pingsOnlyWhenQuiet = true
        return quiet
    }

    /// Whether `wire` is exactly one PING frame without ACK.
    private static func isPing(_ wire: [UInt8]) -> Bool {
        wire.count == 16 && wire[0] == 0x6 && wire[1] == 0
    }

    @Test(
        "a silent peer is declared dead after interval × misses, with one ping sent an interval before",
        arguments: [(15, 3), (5, 2), (1, 10)])
    func deadPeer(intervalSeconds: Int, misses: Int) throws {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .seconds(intervalSeconds)
        configuration.keepaliveMissLimit = misses
        let pair = SessionPair(configuration: configuration, acceptorConfiguration: Self.quiet(configuration))
        pair.pump()
        let lastHeard = pair.now
        // The link is cut: the acceptor hears nothing more, only its own deadlines pass.
        var pingsAt: [Duration] = []
        var steps = 0
        while pair.acceptor.closed == nil, steps < 1000, let next = pair.acceptor.session.nextDeadline {
            pair.now = next
            pair.acceptor.session.advanceTime(to: next)
            var wire: [UInt8] = []
            pair.acceptor.session.pollTransmit(into: &wire, maxBytes: 1 << 16)
            if Self.isPing(wire) { pingsAt.append(next.since(lastHeard)) }
            pair.acceptor.drainEvents()
            steps += 1
        }
        #expect(pair.acceptor.closed?.code == .keepaliveTimeout)
        #expect(pair.now.since(lastHeard) == .seconds(intervalSeconds * misses))
        #expect(pingsAt == [.seconds(intervalSeconds * (misses - 1))])
    }

    @Test("a peer that pings every interval is only answered: an hour without a ping of our own")
    func answersOnly() throws {
        let pair = SessionPair(acceptorConfiguration: Self.quiet())
        pair.pump()
        #expect(pair.acceptor.pongCount == 1, "the first ping goes out at once, for the round trip")
        for _ in 0..<240 {
            pair.advance(by: .seconds(15))
            pair.pump()
        }
        #expect(pair.dialer.closed == nil && pair.acceptor.closed == nil)
        #expect(pair.dialer.pongCount == 241)
        #expect(pair.acceptor.pongCount == 1)
    }

    /// The roles' defaults (`NodeKeepalive`, `GatewayKeepalive`): the gateway's quiet time (40 s)
    /// is longer than the node's interval (30 s), so an idle node is only answered.
    @Test("a node pinging every 30 s (2 misses) is only answered by a gateway at 20 s × 3 for an hour")
    func nodeAndGatewayDefaults() throws {
        var node = SessionConfiguration()
        node.keepaliveInterval = .seconds(30)
        node.keepaliveMissLimit = 2
        var gateway = Self.quiet()
        gateway.keepaliveInterval = .seconds(20)
        let pair = SessionPair(configuration: node, acceptorConfiguration: gateway)
        pair.pump()
        for _ in 0..<360 {
            pair.advance(by: .seconds(10))
            pair.pump()
        }
        #expect(pair.dialer.closed == nil && pair.acceptor.closed == nil)
        #expect(pair.dialer.pongCount == 121)
        #expect(pair.acceptor.pongCount == 1, "only the first ping, for the round trip")
    }

    @Test("a peer that pings less often than our dead limit is kept alive by our quiet-time pings")
    func slowPeer() throws {
        var slow = SessionConfiguration()
        slow.keepaliveInterval = .seconds(60)
        slow.keepaliveMissLimit = 3
        let pair = SessionPair(configuration: slow, acceptorConfiguration: Self.quiet())
        pair.pump()
        for _ in 0..<240 {
            pair.advance(by: .seconds(15))
            pair.pump()
        }
        #expect(pair.dialer.closed == nil && pair.acceptor.closed == nil)
        // The first, then one every 30 s (two of our intervals): each answer is a frame heard.
        #expect(pair.acceptor.pongCount == 121)
    }

    @Test("while a stream is open it pings every interval, so the round trip stays fresh")
    func busyPings() throws {
        let pair = SessionPair(acceptorConfiguration: Self.quiet())
        pair.pump()
        _ = try pair.dialer.session.openStream(metadata: [])
        pair.pump()
        for _ in 0..<8 {
            pair.advance(by: .seconds(15))
            pair.pump()
        }
        #expect(pair.acceptor.pongCount == 9)
    }
}

extension Peer {
    var pongCount: Int {
        events.filter { if case .pong = $0 { true } else { false } }.count
    }
}
