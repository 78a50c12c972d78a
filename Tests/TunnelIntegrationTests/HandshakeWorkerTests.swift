import Glibc
import Testing
import TunnelClient
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issues #11 and #12: the gateway's TLS handshakes run their costly steps on a worker thread
/// (`HandshakeWorker`), with real OpenSSL mutual-TLS handshakes from real clients, and peers that
/// fail or leave in the middle leave nothing behind.
@Suite("Handshakes on a worker thread", .serialized)
struct HandshakeWorkerTests {
    /// A gateway with two worker threads and one handshake per loop turn, so holds at the
    /// ClientHello and hand-overs to the worker meet.
    func fixture() throws -> GatewayFixture {
        try GatewayFixture { configuration, _ in
            configuration.handshakeThreads = 2
            configuration.admission.handshakesPerTurn = 1
        }
    }

    /// After the gateway let go of every connection: no handshake is still with the worker.
    func expectNothingLeft(_ fixture: GatewayFixture, connections: Int = 0) {
        let gateway = fixture.gateway
        #expect(
            fixture.runner.run(until: { gateway.connections.count == connections }, timeout: .seconds(15)),
            "\(gateway.connections.count) connections left")
        #expect(gateway.handshakeWorker?.handshakesAway == 0)
        #expect(gateway.handshakes.waitingCount == 0)
    }

    @Test("twenty nodes and an operator make their mutual-TLS handshakes through the worker and work")
    func nodesAndOperator() throws {
        let fixture = try fixture()
        defer { fixture.tearDown() }
        let worker = try #require(fixture.gateway.handshakeWorker)
        #expect(worker.threadCount == 2)
        let names = (1...20).map { "node-\($0)" }
        for name in names { try fixture.startNode(try fixture.pki.identity(.node, name)) }
        #expect(fixture.runner.run(until: { names.allSatisfy(fixture.online) }, timeout: .seconds(30)))
        let connection = try #require(try fixture.connectOperator(fixture.pki.identity(.operator, "alice"))?.get())
        #expect(try fixture.echoThrough(connection, node: "node-7") == nil)
        // Two steps each after the ClientHello: the server's flight, then the client's certificate.
        #expect(worker.stepsBack >= 2 * 21, "\(worker.stepsBack) steps came back")
        #expect(worker.handshakesAway == 0)
    }

    @Test("a certificate from a foreign CA is refused on the worker with the alert, and the gateway goes on")
    func foreignCertificate() throws {
        let fixture = try fixture()
        defer { fixture.tearDown() }
        let foreign = try CertificateAuthority.createSelfSigned(
            commonName: "foreign", key: try PrivateKey.generateP256(),
            validity: try CertificateValidity(now: Int64(time(nil)), lifetime: 86_400))
        let refused = fixture.connectOperator(try fixture.pki.identity(.operator, "mallory", issuer: foreign))
        guard case .failure(let failure) = refused else {
            Issue.record("a foreign certificate was not refused")
            return
        }
        #expect(failure.message.contains("refused"), "\(failure.message)")
        #expect(fixture.gateway.handshakeWorker?.stepsBack ?? 0 >= 2)
        expectNothingLeft(fixture)
        let alice = fixture.connectOperator(try fixture.pki.identity(.operator, "alice"))
        #expect((try? alice?.get()) != nil, "an operator still gets in after the refusal")
    }

    @Test("peers that close right after their ClientHello or in the middle of the handshake leave nothing behind")
    func peersLeavingMidHandshake() throws {
        let fixture = try fixture()
        defer { fixture.tearDown() }
        let identity = try fixture.pki.identity(.node, "node-1")
        // Kept until the end, so each closes on its own rather than when dropped.
        var peers: [WirePeer] = []
        for round in 0..<20 {
            var dialed: WirePeer??
            try WirePeer.dial(
                loop: fixture.runner.loop, port: fixture.port, identity: identity,
                gatewayCA: fixture.pki.nodeCA.certificate, protocols: [TunnelProtocol.nodeALPN]
            ) { dialed = .some($0) }
            #expect(fixture.runner.run(until: { dialed != nil }))
            let peer = try #require(dialed ?? nil)
            if round % 2 == 1 {
                // The client is done once the server's flight is in; its certificate is on its
                // way, and the gateway's second step may be with the worker as it closes.
                #expect(fixture.runner.run(until: { peer.isEstablished || peer.ended }))
            }
            peer.close()
            peers.append(peer)
        }
        expectNothingLeft(fixture)
        try fixture.startNode(identity)
        #expect(fixture.runner.run(until: { fixture.online("node-1") }, timeout: .seconds(15)))
    }
}
