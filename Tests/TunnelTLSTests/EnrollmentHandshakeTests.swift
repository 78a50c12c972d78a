import Testing

@testable import TunnelTLS

let enrollProtocol = "tunnel-enroll/1"

/// The gateway's enrollment door (`TLSConfiguration.enrollmentProtocol`) and a client whose
/// clock is wrong (`TLSConnection.CertificateTime`).
@Suite("Enrollment handshakes and certificate time")
struct EnrollmentHandshakeTests {
    let pki: PKI

    init() throws {
        pki = try PKI()
    }

    func enrollingServer() throws -> TLSContext {
        try TLSContext(
            configuration: TLSConfiguration(
                role: .server, identity: pki.gatewayIdentity(), peerVerification: pki.gatewayTrust,
                applicationProtocols: [nodeProtocol, operatorProtocol, enrollProtocol],
                enrollmentProtocol: enrollProtocol))
    }

    func expiredNode() throws -> TLSIdentity {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        return try pki.clientIdentity(
            node, issuer: pki.nodeCA, validity: CertificateValidity(now: currentTime() - 3 * day, lifetime: day))
    }

    @Test func aNewNodeEnrollsWithoutACertificate() throws {
        let (client, server) = try connect(pki.clientContext(nil, protocols: [enrollProtocol]), enrollingServer())
        #expect(client.handshakeState.isDone)
        #expect(server.handshakeState.isDone)
        #expect(server.isEnrollment)
        #expect(server.applicationProtocol == enrollProtocol)
        #expect(server.peerIdentity == nil)
        #expect(server.peerCertificate == nil)
    }

    @Test func everyOtherProtocolStillNeedsACertificate() throws {
        for protocols in [[nodeProtocol], [enrollProtocol, nodeProtocol], [nodeProtocol, enrollProtocol]] {
            let (_, server) = try connect(pki.clientContext(nil, protocols: protocols), enrollingServer())
            #expect(server.handshakeState.failure?.code == .peerCertificateMissing, "offered \(protocols)")
            #expect(!server.isEnrollment)
        }
    }

    @Test func aCertifiedClientOfferingBothGetsTheNodeProtocol() throws {
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let (_, server) = try connect(
            pki.clientContext(node, protocols: [enrollProtocol, nodeProtocol]), enrollingServer())
        #expect(server.handshakeState.isDone)
        #expect(server.applicationProtocol == nodeProtocol)
        #expect(!server.isEnrollment)
    }

    @Test func anExpiredNodeCertificateIsAcceptedOnlyForEnrollment() throws {
        let expired = try expiredNode()
        let (_, enrolling) = try connect(pki.clientContext(expired, protocols: [enrollProtocol]), enrollingServer())
        #expect(enrolling.handshakeState.isDone)
        #expect(enrolling.peerCertificateExpired)
        #expect(enrolling.peerIdentity?.name == "node-17")
        #expect(enrolling.verifiedBy?.label == "node CA")

        let (_, node) = try connect(pki.clientContext(expired, protocols: [nodeProtocol]), enrollingServer())
        #expect(node.handshakeState.failure?.code == .certificateExpired)
    }

    @Test func aForeignOrNotYetValidCertificateIsRefusedEvenForEnrollment() throws {
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let foreign = try pki.clientIdentity(node, issuer: pki.foreignCA)
        let future = try pki.clientIdentity(
            node, issuer: pki.nodeCA, validity: CertificateValidity(now: currentTime() + 3 * day, lifetime: day))
        for identity in [foreign, future] {
            let (_, server) = try connect(pki.clientContext(identity, protocols: [enrollProtocol]), enrollingServer())
            #expect(server.handshakeState.failure != nil)
            #expect(!server.peerCertificateExpired)
        }
    }

    @Test func aClientAtTheWrongTimeFailsAndRecoversWithTheGatewaysTime() throws {
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let context = try pki.clientContext(node)
        func handshake(at time: TLSConnection.CertificateTime) throws -> TLSConnection {
            let client = try TLSConnection(context: context, serverHost: gatewayHost, certificateTime: time)
            pump(client, try TLSConnection(context: pki.serverContext()))
            return client
        }
        let at1970 = try handshake(at: .fixed(5))
        #expect(at1970.handshakeState.failure?.code == .certificateNotYetValid)
        #expect(try handshake(at: .unchecked).handshakeState.isDone)
        #expect(try handshake(at: .fixed(currentTime())).handshakeState.isDone)
        #expect(throws: TLSError.self) { try TLSConnection(context: pki.serverContext(), certificateTime: .unchecked) }
    }
}
