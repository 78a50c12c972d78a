import Foundation
import Multiplex
import Testing
import TunnelIO
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// The store's presence records as a table: the stand-in for the shared store's presence API in
/// these in-process tests (the cluster end-to-end test runs the real one on PostgreSQL).
final class PresenceTable: PresenceDirectory {
    var holders: [String: NodePresence] = [:]
    func presence(of node: String) -> NodePresence? { holders[node] }
}

/// Issue #13: an operator on one replica reaches a node held by another over their peer link.
@Suite("Peer-link routing between replicas", .serialized)
struct PeerRelayTests {
    /// Replica r1 is the fixture's gateway (it holds the nodes); r2 is a second gateway on the
    /// same loop and fleet store, where the operators connect.
    private final class Cluster {
        let fixture: GatewayFixture
        let second: Gateway
        let secondPort: UInt16
        let presence = PresenceTable()

        init() throws {
            fixture = try GatewayFixture()
            fixture.gateway.peering = PeerRouting(replicaName: "r1", presence: presence)
            second = try Gateway(
                loop: fixture.runner.loop, configuration: fixture.pki.gatewayConfiguration(),
                store: fixture.pki.fleet.store,
                logger: fixture.runner.logger)
            second.peering = PeerRouting(replicaName: "r2", presence: presence)
            secondPort = try second.start().port
        }

        func hold(_ node: String, at replica: String, port: UInt16) {
            presence.holders[node] = NodePresence(
                replica: replica, advertise: "127.0.0.1:\(port)", epoch: 1, leaseExpires: Int64(time(nil)) + 60)
        }

        /// A node connected to r1, and the presence record saying so.
        func startNodeOnFirstReplica(_ node: String) throws {
            try fixture.startNode(try fixture.pki.identity(.node, node))
            fixture.runner.run(until: { fixture.online(node) })
            hold(node, at: "r1", port: fixture.port)
        }

        func peerLinks(_ gateway: Gateway) -> Int {
            gateway.core.connections.values.filter { if case .peer = $0.role { true } else { false } }.count
        }

        func tearDown() {
            var stopped = false
            second.stop { stopped = true }
            fixture.runner.run(until: { stopped })
            fixture.tearDown()
        }
    }

    @Test("streams through replica 2 reach a node held by replica 1, over one shared peer link")
    func relayOverOneLink() throws {
        let cluster = try Cluster()
        defer { cluster.tearDown() }
        let fixture = cluster.fixture
        try cluster.startNodeOnFirstReplica("node-1")
        guard
            case .success(let operatorLink)? = fixture.connectOperator(
                try fixture.pki.identity(.operator, "alice"), port: cluster.secondPort)
        else {
            Issue.record("the operator did not connect to replica 2")
            return
        }
        for round in 0..<3 {
            let bytes = Array("round \(round) through the peer link".utf8)
            #expect(try fixture.echoThrough(operatorLink, node: "node-1", bytes: bytes) == nil)
        }
        #expect(cluster.peerLinks(cluster.second) == 1)
        #expect(cluster.peerLinks(fixture.gateway) == 1)
        let exposition = String(decoding: cluster.second.metricsExposition(), as: UTF8.self)
        #expect(exposition.contains("tunnel_peer_links_up 1.0"), "\(exposition)")
    }

    @Test("the far replica's refusals reach the operator with the sentence a direct stream gets")
    func refusalsTravel() throws {
        let cluster = try Cluster()
        defer { cluster.tearDown() }
        let fixture = cluster.fixture
        try cluster.startNodeOnFirstReplica("node-1")
        // The presence record says r1 holds node-2, but r1 has no session of it.
        cluster.hold("node-2", at: "r1", port: fixture.port)
        let alice = try fixture.pki.identity(.operator, "alice")
        guard case .success(let direct)? = fixture.connectOperator(alice),
            case .success(let viaPeer)? = fixture.connectOperator(alice, port: cluster.secondPort)
        else {
            Issue.record("the operators did not connect")
            return
        }
        let directRefusal = try fixture.echoThrough(direct, node: "node-1", service: "no-such-service")
        #expect(directRefusal != nil)
        #expect(try fixture.echoThrough(viaPeer, node: "node-1", service: "no-such-service") == directRefusal)
        let offline = try fixture.echoThrough(viaPeer, node: "node-2")
        #expect(offline?.contains("node-2 is not connected") == true, "\(offline ?? "nil")")
    }

    @Test("a holder that cannot be reached is refused with a reason, and the link backs off")
    func unreachableHolder() throws {
        let cluster = try Cluster()
        defer { cluster.tearDown() }
        let fixture = cluster.fixture
        // A port nobody listens on: the fixture's echo server is TCP but speaks no TLS, so use a
        // freshly closed listener's port instead.
        let closedPort = try {
            let probe = try TCPListener(loop: fixture.runner.loop, address: SocketAddress(ip: "127.0.0.1", port: 0)) {
                _ in
            }
            defer { probe.close() }
            return probe.localAddress.port
        }()
        cluster.hold("node-9", at: "r3", port: closedPort)
        guard
            case .success(let viaPeer)? = fixture.connectOperator(
                try fixture.pki.identity(.operator, "alice"), port: cluster.secondPort)
        else {
            Issue.record("the operator did not connect")
            return
        }
        let first = try fixture.echoThrough(viaPeer, node: "node-9")
        #expect(first?.contains("node-9 is not connected") == true, "\(first ?? "nil")")
        #expect(cluster.second.peering?.links.isReachable("r3", now: fixture.runner.loop.now) == false)
        let second = try fixture.echoThrough(viaPeer, node: "node-9")
        #expect(second?.contains("cannot reach") == true, "\(second ?? "nil")")
    }
}
