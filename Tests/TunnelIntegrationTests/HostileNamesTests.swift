import Foundation
import Testing
import TunnelClient
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issue #9, item 6: names are checked at the gateway's door before any look-up, record or list.
@Suite("Names at the gateway's door", .serialized)
struct HostileNamesTests {
    typealias Fleet = FleetTests.Fleet

    @Test("a Kelvin sign, upper case or a control character in a node or service name is refused, not routed")
    func unicodeAliasesDoNotRoute() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        try fleet.startNode(try fleet.pki.identity(.node, "kx-1"))
        #expect(fleet.runner.run(until: { fleet.online("kx-1") }))
        let connection = try #require(try fleet.connectOperator(fleet.pki.identity(.operator, "alice"))?.get())
        #expect(try fleet.echoThrough(connection, node: "kx-1") == nil)
        for (node, service) in [
            ("\u{212A}x-1", "echo"), ("Kx-1", "echo"), ("kx-1\n", "echo"), ("kx-1", "echo\u{1b}[2J"), ("kx-1", "Echo"),
        ] {
            let refusal = try #require(
                try fleet.echoThrough(connection, node: node, service: service), "\(node) \(service) was routed")
            #expect(refusal.contains("invalid"), "\(refusal)")
            #expect(!refusal.contains("\n") && !refusal.contains("\u{1b}"), "\(refusal)")
        }
    }

    @Test("admin requests and enrollment refuse names that break their rule")
    func adminAndEnrollmentNames() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let badLabels = fleet.gateway.administer(
            .createToken(
                TokenSpec(nodeName: nil, namePrefix: nil, lifetimeSeconds: 60, uses: 1, labels: ["tier\n": "gold"])),
            actor: "test")
        #expect(badLabels.failure?.message.contains("invalid label key") == true)
        #expect(badLabels.failure?.code == .invalid)
        let badPrefix = fleet.gateway.administer(
            .createToken(TokenSpec(nodeName: nil, namePrefix: "Plant-", lifetimeSeconds: 60, uses: 1, labels: [:])),
            actor: "test")
        #expect(badPrefix.failure?.message.contains("invalid name prefix") == true)
        #expect(
            fleet.gateway.administer(.removeNode(name: "\u{212A}x-1"), actor: "test").failure?.message.contains(
                "invalid node name") == true)
        #expect(
            fleet.gateway.administer(.revokeUser(name: "bob\u{1b}"), actor: "test").failure?.message.contains(
                "invalid user name")
                == true)
        for name in ["\u{212A}x-2", "Node-2"] {
            guard case .failure(let refusal)? = fleet.enroll(name, token: fleet.token(), files: fleet.files("kx-2"))
            else {
                Issue.record("\(name) enrolled")
                continue
            }
            #expect(refusal.message.contains("invalid node name"), "\(refusal.message)")
        }
        #expect(try fleet.pki.fleet.store.nodes().isEmpty)
    }
}
