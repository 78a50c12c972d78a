import Testing
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Join-token expiry decided by `FleetAuthority` on a virtual clock, where the loopback test
/// waited out a real token's second.
@Suite("Join tokens on a virtual clock")
struct TokenExpiryTests {
    /// The authority's clock, moved by the test.
    final class Clock {
        var now: Int64 = 1_800_000_000
    }

    @Test("a token is refused as expired from the second its lifetime ends, saying when; a second before, it enrolls")
    func expiry() throws {
        let pki = try TestPKI()
        let clock = Clock()
        let authority = FleetAuthority(
            store: pki.fleet.store, nodeCA: pki.nodeCA, operatorCA: pki.operatorCA, nodeCertificateLifetime: 86_400,
            policy: .builtIn, clock: { clock.now })
        let start = clock.now
        let (reply, _) = authority.administer(
            .createToken(TokenSpec(nodeName: nil, namePrefix: nil, lifetimeSeconds: 60, uses: 2, labels: [:])),
            actor: "test")
        guard case .token(let text, _) = reply else {
            Issue.record("no token: \(reply)")
            return
        }
        let token = try JoinToken.parse(text)
        func redeem(_ name: String) throws -> String? {
            let key = try PrivateKey.generateP256()
            let csr = String(decoding: try CertificateSigningRequest(key: key, commonName: name).pem(), as: UTF8.self)
            let request = RedeemRequest(
                tokenID: token.id, secret: token.secret, nodeName: name, hostName: nil, labels: [:], csr: csr)
            do {
                _ = try authority.redeem(request, from: "192.0.2.9")
                return nil
            } catch {
                return error.message
            }
        }
        clock.now = start + 60
        #expect(
            try redeem("node-9")
                == "this token expired at \(UTCTime.format(start + 60)); create a new one with `tunnel token create`")
        clock.now = start + 59
        #expect(try redeem("node-9") == nil)
    }
}
