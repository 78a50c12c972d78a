import Foundation
import Testing
import TunnelAudit
import TunnelClient
import TunnelRuntime
import TunnelState
import TunnelTLS

@testable import TunnelGateway

/// Issue #9, items 7 and 8: labels come from the token or an admin, denials describe the rule and
/// not the node, and a removed node is gone from every listing.
@Suite("Labels and what operators learn of nodes", .serialized)
struct LabelsAndLeaksTests {
    typealias Fleet = FleetTests.Fleet

    static let policy = """
        roles:
          admin:
            admin: true
            allow:
              - services: ["*"]
                nodes: ["*"]
          gold:
            allow:
              - services: [echo]
                labels: {tier: gold}
        """

    @Test("a node's own label wishes are ignored; an admin's `node label` sets and removes, and the policy follows")
    func labelsFromTokenAndAdmin() throws {
        let fleet = try Fleet(policy: Self.policy)
        defer { fleet.tearDown() }
        var outcome: Result<TLSIdentity, FleetFailure>?
        let files = fleet.files("n-1")
        // The node asks for tier=gold, which would make it reachable by the gold role.
        NodeCredentials.enroll(
            loop: fleet.runner.loop, host: "127.0.0.1", port: fleet.port, serverName: "localhost",
            token: fleet.token(labels: ["site": "plant-a"]), nodeName: "n-1",
            labels: ["tier": "gold", "site": "elsewhere"],
            files: files, logger: fleet.runner.logger
        ) { outcome = $0 }
        fleet.runner.run(until: { outcome != nil })
        let identity = try #require(try outcome?.get())
        #expect(try fleet.pki.fleet.store.node(named: "n-1")?.labels == ["site": "plant-a"])

        try fleet.startNode(identity, labels: ["tier": "gold"])
        #expect(fleet.runner.run(until: { fleet.online("n-1") }))
        let gold = try #require(
            try fleet.connectOperator(fleet.pki.identity(.operator, "carol", roles: ["gold"]))?.get())
        #expect(try fleet.echoThrough(gold, node: "n-1") != nil)
        #expect(fleet.gateway.nodeStatuses().first { $0.name == "n-1" }?.labels == ["site": "plant-a"])

        let reply = fleet.gateway.administer(
            .labelNode(name: "n-1", set: ["tier": "gold"], remove: ["site"]), actor: "test")
        #expect(reply.failure == nil, "\(reply)")
        #expect(try fleet.pki.fleet.store.node(named: "n-1")?.labels == ["tier": "gold"])
        #expect(try fleet.echoThrough(gold, node: "n-1") == nil)
        #expect(
            fleet.gateway.administer(.labelNode(name: "n-1", set: ["tier\n": "x"], remove: []), actor: "test").failure?
                .message.contains("invalid label key") == true)
        #expect(
            fleet.gateway.administer(.labelNode(name: "ghost", set: ["a": "b"], remove: []), actor: "test").failure?
                .message.contains("there is no node ghost") == true)
        #expect(
            fleet.gateway.administer(.labelNode(name: "ghost", set: ["a": "b"], remove: []), actor: "test").failure?
                .code
                == .notFound)
    }

    @Test("a denial reads the same for a node with secret labels and for a node that does not exist")
    func denialsTellNothing() throws {
        let fleet = try Fleet(policy: Self.policy)
        defer { fleet.tearDown() }
        let secret = try fleet.pki.identity(.node, "vault-1", enrolled: false)
        try fleet.pki.fleet.enroll(secret, labels: ["tier": "silver", "room": "secret-lab"])
        try fleet.startNode(secret)
        #expect(fleet.runner.run(until: { fleet.online("vault-1") }))
        let gold = try #require(
            try fleet.connectOperator(fleet.pki.identity(.operator, "carol", roles: ["gold"]))?.get())
        let existing = try #require(try fleet.echoThrough(gold, node: "vault-1"))
        let absent = try #require(try fleet.echoThrough(gold, node: "vault-2"))
        #expect(!existing.contains("silver") && !existing.contains("secret-lab"), "\(existing)")
        #expect(existing.replacingOccurrences(of: "vault-1", with: "vault-2") == absent)
    }

    @Test("after node rm the node is gone from tunnel nodes and node ls, though it connected in this run")
    func removedNodesVanish() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        try fleet.startNode(try fleet.pki.identity(.node, "gone-1"), labels: ["announced": "yes"])
        #expect(fleet.runner.run(until: { fleet.online("gone-1") }))
        #expect(fleet.gateway.administer(.removeNode(name: "gone-1"), actor: "test").failure == nil)
        #expect(
            fleet.runner.run(
                until: { !fleet.gateway.nodeStatuses().contains { $0.name == "gone-1" } }, timeout: .seconds(5)))
        // The client keeps dialing and is refused; it must not come back into the list.
        #expect(
            !fleet.runner.run(
                until: { fleet.gateway.nodeStatuses().contains { $0.name == "gone-1" } }, timeout: .seconds(1)))
        #expect(fleet.gateway.nodeStatuses(visibleToRoles: ["admin"]).isEmpty)
    }
}
