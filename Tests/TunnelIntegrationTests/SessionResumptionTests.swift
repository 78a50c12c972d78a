import Foundation
import Logging
import Testing
import TunnelClient
import TunnelGateway
import TunnelRuntime
import TunnelTLS

/// Session tickets over real sockets: a node resumes after the gateway restarts with its
/// ticket keys, and a ticket gets a revoked node nothing that a full handshake would not.
@Suite("Session resumption at the gateway", .serialized)
struct SessionResumptionTests {
    final class Fleet: GatewayFixture {
        init() throws {
            try super.init { configuration, pki in
                configuration.sessionTicketKeysPath = Self.keysPath(pki)
            }
        }

        static func keysPath(_ pki: TestPKI) -> String { "\(pki.fleet.directory)/session-ticket-keys" }

        func restartWithKeys() throws {
            try restartGateway { $0.sessionTicketKeysPath = Self.keysPath(self.pki) }
        }

        /// A counter's value in the gateway's /metrics body, 0 when it was never counted.
        func counter(_ line: String) -> Int {
            let text = String(decoding: gateway.metricsExposition(), as: UTF8.self)
            return text.split(separator: "\n").first { $0.hasPrefix(line + " ") }
                .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }

        var resumed: Int { counter("tunnel_handshakes_resumed_total") }
    }

    @Test("a node resumes its session after a gateway restart, and is admitted as after a full handshake")
    func resumesAfterRestart() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        try fleet.startNode(try fleet.pki.identity(.node, "node-1"))
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        #expect(fleet.resumed == 0)

        try fleet.restartWithKeys()
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        #expect(fleet.resumed == 1)
        let keys = try #require(try? FileManager.default.attributesOfItem(atPath: Fleet.keysPath(fleet.pki)))
        #expect((keys[.posixPermissions] as? Int) == 0o600)
        // The resumed session carries streams like any other.
        let operatorSession = try #require(try fleet.connectOperator(fleet.pki.identity(.operator, "alice"))?.get())
        #expect(try fleet.echoThrough(operatorSession, node: "node-1") == nil)
    }

    @Test("a revoked node that still holds a ticket resumes the TLS session and is refused as revoked")
    func revokedNodeWithATicket() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let log = FleetTests.CapturedLog()
        try fleet.startNode(try fleet.pki.identity(.node, "node-1"), logger: Logger(label: "node-1") { _ in log })
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        try fleet.restartWithKeys()
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        #expect(fleet.resumed == 1)

        // Revocation closes the session; the node redials with the ticket it got on it, resumes,
        // and the admission that follows a full handshake refuses it (`FleetAuthority.admitNode`).
        _ = fleet.gateway.administer(.revokeNode(name: "node-1"), actor: "test")
        let refusal = "revoked: peer is going away: node node-1 was revoked at "
        #expect(
            fleet.runner.run(until: { fleet.resumed >= 2 && log.reasons.contains { $0.hasPrefix(refusal) } }),
            "\(fleet.resumed) resumed; \(log.reasons)")
        #expect(!fleet.runner.run(until: { fleet.online("node-1") }, timeout: .seconds(2)))
    }
}
