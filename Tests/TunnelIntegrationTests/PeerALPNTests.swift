import Foundation
import Multiplex
import Testing
import TunnelRuntime
import TunnelTLS

/// Issue #13: a peer link between replicas uses its own ALPN with a gateway-peer identity from the
/// node CA; that identity is refused on every other ALPN, and every other identity on the peer's.
@Suite("Peer links at the gateway", .serialized)
struct PeerALPNTests {
    private static let wrongRole = [ErrorCode(rawValue: 0x105)]

    @Test(
        "a replica's gateway-peer certificate opens a peer link and nothing else; nodes and operators cannot open one")
    func peerIdentityOnlyOnPeerALPN() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        let alpn = ALPNTests()
        let replica = try fixture.pki.identity(.gateway, "r2", issuer: fixture.pki.nodeCA, enrolled: false)
        let peer = try alpn.dial(fixture, replica, protocols: [TunnelProtocol.peerALPN])
        #expect(peer.tls.applicationProtocol == TunnelProtocol.peerALPN)
        #expect(peer.goAways.isEmpty)
        peer.close()
        for wrong in [TunnelProtocol.nodeALPN, TunnelProtocol.operatorALPN] {
            let refused = try alpn.dial(fixture, replica, protocols: [wrong])
            #expect(refused.goAways == Self.wrongRole, "\(wrong)")
            refused.close()
        }
        let strangers = [
            try fixture.pki.identity(.node, "node-3"), try fixture.pki.identity(.operator, "alice"),
            try fixture.pki.identity(.gateway, "r3", issuer: fixture.pki.operatorCA, enrolled: false),
        ]
        for stranger in strangers {
            let refused = try alpn.dial(fixture, stranger, protocols: [TunnelProtocol.peerALPN])
            #expect(refused.goAways == Self.wrongRole)
            refused.close()
        }
    }
}
