import Foundation
import Glibc
import Testing
import TunnelClient
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issue #9, item 12: an expired node certificate re-enrolls only within the re-enrollment window.
@Suite("Re-enrollment window", .serialized)
struct ReenrollWindowTests {
    @Test("a certificate expired within the window re-enrolls; one expired longer ago is refused with a sentence")
    func window() throws {
        let fixture = try GatewayFixture { configuration, _ in configuration.reenrollWindow = 86_400 }
        defer { fixture.tearDown() }
        let now = Int64(time(nil))
        func reenroll(_ name: String, expiredSecondsAgo: Int64) throws -> Result<String, FleetFailure> {
            let identity = try fixture.pki.identity(
                .node, name, notBefore: now - expiredSecondsAgo - 3600, lifetime: 3600)
            let csr = String(
                decoding: try CertificateSigningRequest(key: identity.key, commonName: name).pem(), as: UTF8.self)
            do {
                return .success(
                    try fixture.gateway.authority.reenroll(name: name, presented: identity.chain[0], csr: csr))
            } catch { return .failure(error) }
        }
        #expect(throws: Never.self) { try reenroll("recent-1", expiredSecondsAgo: 3600).get() }
        guard case .failure(let refusal) = try reenroll("old-1", expiredSecondsAgo: 2 * 86_400) else {
            Issue.record("a certificate expired two days ago re-enrolled with a one-day window")
            return
        }
        #expect(refusal.message.contains("re-enrollment window (1 day, reenroll-window)"), "\(refusal.message)")

        // End to end: the recent node comes back by itself; the old one stays out.
        try fixture.startNode(try fixture.pki.identity(.node, "recent-2", notBefore: now - 7200, lifetime: 3600))
        #expect(fixture.runner.run(until: { fixture.online("recent-2") }))
    }
}
