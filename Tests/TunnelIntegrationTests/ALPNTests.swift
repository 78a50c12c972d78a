import Foundation
import Multiplex
import Testing
import TunnelRuntime
import TunnelTLS

/// Which ALPN protocol the gateway picks (`docs/TUNNEL.md` §1).
@Suite("ALPN at the gateway", .serialized)
struct ALPNTests {
    func dial(_ fixture: GatewayFixture, _ identity: TLSIdentity, protocols: [String]) throws -> WirePeer {
        var dialed: WirePeer??
        try WirePeer.dial(
            loop: fixture.runner.loop, port: fixture.port, identity: identity,
            gatewayCA: fixture.pki.nodeCA.certificate, protocols: protocols
        ) { dialed = .some($0) }
        fixture.runner.run(until: { dialed != nil })
        let peer = try #require(dialed ?? nil)
        peer.send(.helloV1)
        fixture.runner.run(until: { !peer.frames.isEmpty || peer.ended })
        return peer
    }

    @Test("a client offering several protocols gets its first choice")
    func clientPreferenceWins() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        let alice = try dial(
            fixture, try fixture.pki.identity(.operator, "alice"),
            protocols: [TunnelProtocol.operatorALPN, TunnelProtocol.nodeALPN])
        #expect(alice.tls.applicationProtocol == TunnelProtocol.operatorALPN)
        #expect(alice.goAways.isEmpty)
        #expect(alice.frames.first.map { if case .hello = $0 { true } else { false } } == true)
        alice.close()
        let node = try dial(
            fixture, try fixture.pki.identity(.node, "node-3"),
            protocols: [TunnelProtocol.nodeALPN, TunnelProtocol.operatorALPN])
        #expect(node.tls.applicationProtocol == TunnelProtocol.nodeALPN)
        #expect(node.goAways.isEmpty)
        node.close()
    }

    @Test("an operator certificate whose first choice is the node protocol is refused with wrong-role")
    func wrongFirstChoice() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        let alice = try dial(
            fixture, try fixture.pki.identity(.operator, "alice"),
            protocols: [TunnelProtocol.nodeALPN, TunnelProtocol.operatorALPN])
        #expect(alice.goAways == [ErrorCode(rawValue: 0x105)])
        alice.close()
    }
}
