import Testing

@testable import TunnelTLS

/// What `HandshakeWorker` (TunnelRuntime) relies on: a server with `stopsAfterAdmission` stops
/// right after its ClientHello is admitted, asks `holdAtClientHello` once, and finishes when
/// advanced again, as a worker thread does it.
@Suite("Stopping after the ClientHello is admitted")
struct StopAfterAdmissionTests {
    @Test("the handshake stops once after admission, the hold is asked once, and it completes with mutual TLS")
    func stopsOnceAndCompletes() throws {
        let pki = try PKI()
        let identity = try pki.clientIdentity(try TunnelIdentity(role: .node, name: "node-1"), issuer: pki.nodeCA)
        let client = try TLSConnection(context: try pki.clientContext(identity), serverHost: gatewayHost)
        let server = try TLSConnection(context: try pki.serverContext())
        server.stopsAfterAdmission = true
        var asked = 0
        server.holdAtClientHello = { _ in
            asked += 1
            return asked == 1
        }
        client.step()
        server.give(client.take())
        #expect(server.advanceHandshake().failure == nil)
        #expect(!server.clientHelloAdmitted, "held at the first question")
        #expect(server.take().isEmpty, "nothing sent while held")
        server.step()
        #expect(server.clientHelloAdmitted)
        #expect(server.take().isEmpty, "stopped after admission, before the key exchange")
        #expect(asked == 2)
        pump(client, server)
        #expect(server.handshakeState.isDone)
        #expect(client.handshakeState.isDone)
        #expect(server.peerIdentity?.name == "node-1")
        #expect(asked == 2, "not asked again once admitted")
    }

    @Test("a client certificate from a foreign CA fails the handshake after the stop, with the reason")
    func foreignCertificate() throws {
        let pki = try PKI()
        let identity = try pki.clientIdentity(try TunnelIdentity(role: .node, name: "node-1"), issuer: pki.foreignCA)
        let client = try TLSConnection(context: try pki.clientContext(identity), serverHost: gatewayHost)
        let server = try TLSConnection(context: try pki.serverContext())
        server.stopsAfterAdmission = true
        pump(client, server)
        #expect(server.clientHelloAdmitted)
        let failure = try #require(server.handshakeState.failure)
        #expect(failure.code == .untrustedCertificate)
        #expect(failure.message.contains("Other Fleet CA"))
        let clientError = #expect(throws: TLSError.self) { try readAvailable(client) }
        #expect(clientError?.code == .untrustedCertificate, "the alert reached the client")
    }
}
