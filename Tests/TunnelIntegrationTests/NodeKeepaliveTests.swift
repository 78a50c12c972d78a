import Multiplex
import Testing
import TunnelClient
import TunnelGateway
import TunnelIO

/// The gateway answers an idle node's keepalive pings without pinging it (PROTOCOL.md §7.1), so
/// what `tunnel nodes` shows as the last keepalive must be the last frame heard from the node,
/// not the last answer to a ping of the gateway's own (that was the connect, hours ago for an
/// idle node).
@Suite("Node keepalives as the node list shows them")
struct NodeKeepaliveTests {
    @Test("an idle node that pings often shows a fresh keepalive although the gateway never pings it")
    func lastKeepaliveIsTheNodesPing() throws {
        // The gateway's own pings would come only after 20 s of silence.
        let fixture = try GatewayFixture { configuration, _ in configuration.session.keepaliveInterval = .seconds(10) }
        defer { fixture.tearDown() }
        var node = SessionConfiguration()
        node.keepaliveInterval = .milliseconds(200)
        try fixture.startNode(try fixture.pki.identity(.node, "node-1"), session: node)
        #expect(fixture.runner.run(until: { fixture.online("node-1") }))
        let since = EventLoop.monotonicNanoseconds
        func lastKeepalive() -> Double? {
            fixture.gateway.nodeStatuses().first { $0.name == "node-1" }?.lastKeepaliveSecondsAgo
        }
        // Well past the connect (and the gateway's first ping), the node's own pings keep it fresh.
        let fresh = fixture.runner.run(
            until: { EventLoop.monotonicNanoseconds - since > 1_200_000_000 && (lastKeepalive() ?? 99) < 0.5 },
            timeout: .seconds(5))
        #expect(fresh, "last keepalive \(String(describing: lastKeepalive())) s ago")
    }
}
