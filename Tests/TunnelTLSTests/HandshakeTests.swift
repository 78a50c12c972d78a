import COpenSSL
import Testing

@testable import TunnelTLS

@Suite("Mutual TLS handshakes pumped in memory")
struct HandshakeTests {
    let pki: PKI

    init() throws {
        pki = try PKI()
    }

    @Test func nodeConnectsWithMutualTLS13AndALPN() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), pki.serverContext()
        )
        #expect(client.handshakeState.isDone)
        #expect(server.handshakeState.isDone)
        #expect(client.applicationProtocol == nodeProtocol)
        #expect(client.cipherSuite == "TLS_AES_128_GCM_SHA256")
        #expect(server.applicationProtocol == nodeProtocol)
        #expect(try server.peerCertificate?.tunnelIdentity() == node)
        #expect(server.peerIdentity == node)
        #expect(client.peerIdentity == nil)
        #expect(server.verifiedBy?.label == "node CA")
        #expect(client.peerCertificate?.commonName == "gateway")
        #expect(client.verifiedBy?.label == "gateway CA")

        #expect(try client.writePlaintext(Array("ping".utf8)) == 4)
        pump(client, server)
        #expect(try readAvailable(server) == Array("ping".utf8))
        #expect(try server.writePlaintext(Array("pong".utf8)) == 4)
        pump(client, server)
        #expect(try readAvailable(client) == Array("pong".utf8))
    }

    @Test func handshakeAndDataSurviveOneByteAtATime() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let client = try TLSConnection(
            context: pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), serverHost: gatewayHost)
        let server = try TLSConnection(context: pki.serverContext())
        // Both queues stay non-empty most of the time, so drainCiphertext's append path is used.
        var toServer: [UInt8] = []
        var toClient: [UInt8] = []
        var received: [UInt8] = []
        var sent = false
        for _ in 0..<100_000 {
            client.advanceHandshake()
            server.advanceHandshake()
            if !sent, client.handshakeState.isDone {
                #expect(try client.writePlaintext(Array("byte by byte".utf8)) == 12)
                sent = true
            }
            client.drainCiphertext(into: &toServer)
            server.drainCiphertext(into: &toClient)
            if !toServer.isEmpty { server.feedCiphertext([toServer.removeFirst()]) }
            if !toClient.isEmpty { client.feedCiphertext([toClient.removeFirst()]) }
            if let bytes = try readAvailable(server) { received += bytes }
            if received.count == 12 { break }
        }
        #expect(client.handshakeState.isDone)
        #expect(server.handshakeState.isDone)
        #expect(received == Array("byte by byte".utf8))
    }

    @Test func operatorIsVerifiedByTheOperatorCAOverAnIPAddress() throws {
        let alice = try TunnelIdentity(role: .operator, name: "alice")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(alice, issuer: pki.operatorCA), protocols: [operatorProtocol]),
            pki.serverContext(),
            host: gatewayIP
        )
        #expect(server.handshakeState.isDone)
        #expect(server.applicationProtocol == operatorProtocol)
        #expect(server.verifiedBy?.label == "operator CA")
        #expect(try server.peerCertificate?.tunnelIdentity() == alice)
        #expect(client.handshakeState.isDone)
    }

    @Test func clientFromAForeignCAIsRefused() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.foreignCA)), pki.serverContext()
        )
        let error = try #require(server.handshakeState.failure)
        #expect(error.code == .untrustedCertificate)
        #expect(error.message.contains("tunnel://node/node-17"))
        #expect(error.message.contains("was not signed by any trusted CA (node CA, operator CA)"))
        #expect(error.message.contains("Other Fleet CA"))
        #expect(server.peerCertificate == nil)
        // TLS 1.3: the client learns of the refusal from the alert, on its next read.
        let clientError = #expect(throws: TLSError.self) { try readAvailable(client) }
        #expect(clientError?.code == .untrustedCertificate)
    }

    @Test func expiredClientCertificateIsRefusedWithItsDate() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let validity = try CertificateValidity(now: currentTime() - 3 * day, lifetime: day)
        let identity = try pki.clientIdentity(node, issuer: pki.nodeCA, validity: validity)
        let (client, server) = try connect(pki.clientContext(identity), pki.serverContext())
        let error = try #require(server.handshakeState.failure)
        #expect(error.code == .certificateExpired)
        #expect(error.message.contains("expired at \(UTCTime.format(validity.notAfter))"))
        #expect(error.message.contains("node-17"))
        let clientError = #expect(throws: TLSError.self) { try readAvailable(client) }
        #expect(clientError?.code == .certificateExpired)
        #expect(clientError?.message.contains("expired") == true)
    }

    @Test func notYetValidClientCertificateIsRefusedWithItsDate() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let validity = try CertificateValidity(now: currentTime() + 2 * day, lifetime: day, backdate: 0)
        let identity = try pki.clientIdentity(node, issuer: pki.nodeCA, validity: validity)
        let (_, server) = try connect(pki.clientContext(identity), pki.serverContext())
        let error = try #require(server.handshakeState.failure)
        #expect(error.code == .certificateNotYetValid)
        #expect(error.message.contains("not valid before \(UTCTime.format(validity.notBefore))"))
        #expect(error.message.contains("clock"))
    }

    @Test func nodeWhoseClockIsBehindSeesTheGatewayAsNotYetValid() throws {
        // The gateway certificate starts later than the node's clock: what a node stuck in 1970 sees.
        let validity = try CertificateValidity(now: currentTime() + 3 * day, lifetime: 30 * day, backdate: 0)
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, _) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)),
            pki.serverContext(identity: pki.gatewayIdentity(validity: validity))
        )
        let error = try #require(client.handshakeState.failure)
        #expect(error.code == .certificateNotYetValid)
        #expect(error.message.contains("gateway certificate \"gateway\""))
        #expect(error.message.contains("not valid before \(UTCTime.format(validity.notBefore))"))
        #expect(error.message.contains("enable NTP"))
    }

    @Test func gatewayCertificateForAnotherHostIsRefused() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), pki.serverContext(), host: "evil.example"
        )
        let error = try #require(client.handshakeState.failure)
        #expect(error.code == .hostMismatch)
        #expect(error.message.contains("evil.example"))
        #expect(error.message.contains("DNS:gateway.example"))
        #expect(!server.handshakeState.isDone)
    }

    @Test func clientCertificateWithoutTunnelIdentityIsRefused() throws {
        // Properly signed by the node CA and usable for client auth, but naming nobody.
        let key = try PrivateKey.generateP256()
        let anonymous = try CertificateBuilder.build(
            subject: X509Name(commonName: "node-17"), publicKey: key.pointer,
            issuer: pki.nodeCA.certificate.pointer, signingKey: pki.nodeCA.key.pointer,
            validity: .init(now: currentTime(), lifetime: day),
            extensions: [(NID_ext_key_usage, "clientAuth"), (NID_authority_key_identifier, "keyid:always")],
            alternativeNames: [(GEN_URI, "https://example.com/node-17")]
        )
        let (client, server) = try connect(
            pki.clientContext(TLSIdentity(chain: [anonymous], key: key)), pki.serverContext())
        let error = try #require(server.handshakeState.failure)
        #expect(error.code == .invalidIdentity)
        #expect(error.message.contains("exactly one"))
        #expect(server.peerIdentity == nil)
        #expect(throws: TLSError.self) { try readAvailable(client) }
    }

    @Test func clientWithoutCertificateIsRefused() throws {
        let (client, server) = try connect(pki.clientContext(nil), pki.serverContext())
        let error = try #require(server.handshakeState.failure)
        #expect(error.code == .peerCertificateMissing)
        let clientError = #expect(throws: TLSError.self) { try readAvailable(client) }
        #expect(clientError?.code == .peerCertificateMissing)
    }

    @Test("handshake errors name the peer that was dialed, not always the gateway")
    func errorsNameThePeer() throws {
        var configuration = TLSConfiguration(
            role: .client, identity: nil, peerVerification: pki.clientTrust, applicationProtocols: [nodeProtocol])
        configuration.peerKind = .kubernetesAPIServer
        let apiServer = try TLSContext(configuration: configuration)
        let (client, _) = try connect(apiServer, pki.serverContext())
        let error = #expect(throws: TLSError.self) { try readAvailable(client) }
        #expect(
            error?.message.hasPrefix("the Kubernetes API server requires a client certificate") == true,
            "\(String(describing: error))")
        let (gatewayClient, _) = try connect(pki.clientContext(nil), pki.serverContext())
        let gatewayError = #expect(throws: TLSError.self) { try readAvailable(gatewayClient) }
        #expect(
            gatewayError?.message.hasPrefix("the gateway requires a client certificate") == true,
            "\(String(describing: gatewayError))")
    }

    @Test func nodeCertificateCannotActAsGateway() throws {
        // A server presenting a clientAuth-only node certificate must fail the client's purpose check.
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let nodeIdentity = try pki.clientIdentity(node, issuer: pki.nodeCA)
        let fakeGateway = try TLSContext(
            configuration: TLSConfiguration(
                role: .server, identity: nodeIdentity, peerVerification: pki.gatewayTrust,
                applicationProtocols: [nodeProtocol]
            ))
        let trustNodeCA = TLSConfiguration.PeerVerification.trustedCAs([
            TrustedCA(.node, certificate: pki.nodeCA.certificate)
        ])
        let (client, _) = try connect(pki.clientContext(nodeIdentity, verification: trustNodeCA), fakeGateway)
        let error = try #require(client.handshakeState.failure)
        #expect(error.code == .untrustedCertificate)
        #expect(error.message.contains("extendedKeyUsage"))
    }

    @Test func pinnedCAIsAcceptedAndAWrongPinRefused() throws {
        let pinned = try connect(
            pki.clientContext(nil, verification: .pinnedCA(sha256: pki.gatewayCA.certificate.sha256Fingerprint)),
            pki.serverContext()
        )
        #expect(pinned.client.handshakeState.isDone)
        #expect(pinned.client.verifiedBy?.kind == .pinned)
        #expect(pinned.client.verifiedBy?.certificate.sha256Fingerprint == pki.gatewayCA.certificate.sha256Fingerprint)

        let wrongPin = pki.foreignCA.certificate.sha256Fingerprint
        let refused = try connect(
            pki.clientContext(nil, verification: .pinnedCA(sha256: wrongPin)), pki.serverContext())
        let error = try #require(refused.client.handshakeState.failure)
        #expect(error.code == .pinMismatch)
        #expect(error.message.contains(Hex.encode(wrongPin)))
    }

    @Test func pinnedModeStillChecksTheHost() throws {
        let pin = pki.gatewayCA.certificate.sha256Fingerprint
        let (client, _) = try connect(
            pki.clientContext(nil, verification: .pinnedCA(sha256: pin)), pki.serverContext(), host: "evil.example")
        #expect(client.handshakeState.failure?.code == .hostMismatch)
    }

    @Test func noCommonApplicationProtocolFailsTheHandshake() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA), protocols: ["tunnel-node/2"]),
            pki.serverContext()
        )
        #expect(server.handshakeState.failure?.code == .noCommonApplicationProtocol)
        #expect(client.handshakeState.failure?.code == .noCommonApplicationProtocol)
    }

    @Test("a TLS 1.3 client that offers no ALPN at all is refused in the handshake, with an alert")
    func noALPNOfferedFailsTheHandshake() throws {
        let server = try TLSConnection(context: pki.serverContext())
        let bare = RawPeer(server: false) { _ in }
        pump(bare, server)
        #expect(server.handshakeState.failure?.code == .noCommonApplicationProtocol)
        #expect(server.handshakeState.failure?.message.contains("offered no application protocol") == true)
        #expect(!bare.handshakeFinished)
    }

    @Test func tls12OnlyClientIsRefused() throws {
        let server = try TLSConnection(context: pki.serverContext())
        let legacy = RawPeer(server: false) { context in
            _ = tunnel_ssl_ctx_set_max_proto_version(context, TLS1_2_VERSION)
        }
        pump(legacy, server)
        #expect(server.handshakeState.failure?.code == .protocolVersion)
        #expect(!legacy.handshakeFinished)
    }

    @Test func gatewayIssuesNoSessionTicket() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), pki.serverContext())
        #expect(try server.writePlaintext(Array("hello".utf8)) == 5)
        pump(client, server)
        // Tickets travel after the handshake; reading makes the client process anything that came.
        #expect(try readAvailable(client) == Array("hello".utf8))
        #expect(!client.sessionIsResumable)
    }

    @Test func ticketCheckDetectsAServerThatIssuesTickets() throws {
        // Control for the test above: a stock OpenSSL server sends tickets and the check sees them.
        let gateway = try pki.gatewayIdentity()
        let server = RawPeer(server: true) { context in
            _ = SSL_CTX_use_certificate(context, gateway.chain[0].pointer)
            _ = SSL_CTX_use_PrivateKey(context, gateway.key.pointer)
            SSL_CTX_set_alpn_select_cb(
                context,
                { _, out, outLength, offered, _, _ in
                    out?.pointee = offered.map { $0 + 1 }
                    outLength?.pointee = offered?.pointee ?? 0
                    return SSL_TLSEXT_ERR_OK
                }, nil)
        }
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let client = try TLSConnection(
            context: pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), serverHost: gatewayHost)
        pump(client, server)
        #expect(client.handshakeState.isDone)
        _ = try readAvailable(client)
        #expect(client.sessionIsResumable)
    }

    @Test func closeNotifyIsReportedAsClosedAndTruncationAsError() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let clientContext = try pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA))
        let serverContext = try pki.serverContext()

        let clean = try connect(clientContext, serverContext)
        clean.client.shutdown()
        pump(clean.client, clean.server)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try buffer.withUnsafeMutableBytes { try clean.server.readPlaintext(into: $0) } == .closed)

        let cut = try connect(clientContext, serverContext)
        cut.server.feedEndOfCiphertext()
        let error = #expect(throws: TLSError.self) {
            try buffer.withUnsafeMutableBytes { try cut.server.readPlaintext(into: $0) }
        }
        #expect(error?.code == .truncated)
    }

    @Test func mismatchedKeyNamesBothFiles() throws {
        let gateway = try pki.gatewayIdentity()
        let wrong = TLSIdentity(
            chain: gateway.chain, key: try .generateP256(), certificatePath: "/x/gateway.crt", keyPath: "/x/other.key")
        let error = #expect(throws: TLSError.self) {
            try TLSContext(
                configuration: TLSConfiguration(
                    role: .server, identity: wrong, peerVerification: pki.gatewayTrust,
                    applicationProtocols: [nodeProtocol]))
        }
        #expect(error?.code == .keyMismatch)
        #expect(error?.message.contains("/x/gateway.crt") == true)
        #expect(error?.message.contains("/x/other.key") == true)
    }
}
