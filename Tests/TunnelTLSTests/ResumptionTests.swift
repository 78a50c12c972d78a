import COpenSSL
import Foundation
import Glibc
import Testing

@testable import TunnelTLS

/// TLS 1.3 session resumption: tickets sealed with keys kept in a file survive a server
/// restart, a resumed session shows the same verified peer as a full handshake, and a ticket
/// whose certificate no longer verifies gets a full handshake instead.
@Suite struct ResumptionTests {
    let pki: PKI
    let directory: String

    init() throws {
        pki = try PKI()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tickets-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    var keysPath: String { "\(directory)/session-ticket-keys" }

    func server(_ ring: TicketKeyRing, trust: TLSConfiguration.PeerVerification? = nil) throws -> TLSContext {
        var configuration = TLSConfiguration(
            role: .server, identity: try pki.gatewayIdentity(), peerVerification: trust ?? pki.gatewayTrust,
            applicationProtocols: [nodeProtocol, operatorProtocol, enrollProtocol], enrollmentProtocol: enrollProtocol)
        configuration.resumption = .tickets(ring, protocols: [nodeProtocol])
        return try TLSContext(configuration: configuration)
    }

    func client(_ identity: TLSIdentity, protocols: [String] = [nodeProtocol]) throws -> TLSContext {
        var configuration = TLSConfiguration(
            role: .client, identity: identity, peerVerification: pki.clientTrust, applicationProtocols: protocols)
        configuration.resumption = .keepSessions
        return try TLSContext(configuration: configuration)
    }

    /// A handshake, then some data from the server, so the client reads the ticket that follows.
    func dial(_ client: TLSContext, _ server: TLSContext) throws -> (client: TLSConnection, server: TLSConnection) {
        let pair = try connect(client, server)
        #expect(try pair.server.writePlaintext(Array("hello".utf8)) == 5)
        pump(pair.client, pair.server)
        #expect(try readAvailable(pair.client) == Array("hello".utf8))
        return pair
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

    @Test func aNodeResumesAfterTheServerRestartsWithTheSameVerifiedIdentity() throws {
        defer { cleanUp() }
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let nodeContext = try client(node)
        let first = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        #expect(first.client.handshakeState.isDone && !first.client.isResumed && !first.server.isResumed)

        // A new process: the keys come back from the file.
        let restarted = try server(TicketKeyRing(path: keysPath, now: currentTime()))
        let second = try dial(nodeContext, restarted)
        #expect(second.client.isResumed && second.server.isResumed)
        #expect(second.server.peerIdentity?.name == "node-17")
        #expect(second.server.verifiedBy?.kind == .node)
        #expect(second.server.peerCertificate?.serialNumberHex == node.chain[0].serialNumberHex)
        #expect(second.client.verifiedBy?.kind == .gateway)
        #expect(second.client.peerCertificate?.serialNumberHex == first.client.peerCertificate?.serialNumberHex)

        // The resumed session brought a fresh ticket: the next dial resumes too.
        #expect(try dial(nodeContext, restarted).server.isResumed)
    }

    @Test func theTicketOutlivesItsConnectionDyingBadlyAndADialThatNeverHandshook() throws {
        defer { cleanUp() }
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let nodeContext = try client(node)
        let killed = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        // The gateway is killed: the session ends without close_notify, a fatal error for OpenSSL.
        killed.client.feedEndOfCiphertext()
        #expect(throws: TLSError.self) { try readAvailable(killed.client) }
        // A dial whose socket the gateway closes at the door, before any handshake.
        _ = try TLSConnection(context: nodeContext, serverHost: gatewayHost)
        let restarted = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        #expect(restarted.server.isResumed && restarted.client.isResumed)
    }

    @Test func aTicketWhoseCertificateNoLongerVerifiesGetsAFullHandshake() throws {
        defer { cleanUp() }
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let nodeContext = try client(node)
        _ = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        // The node CA is no longer trusted: the ticket opens, but its certificate fails the
        // check again, so the server asks for the certificate, which fails as in any handshake.
        let distrusting = try server(
            TicketKeyRing(path: keysPath, now: currentTime()),
            trust: .trustedCAs([TrustedCA(.operator, certificate: pki.operatorCA.certificate)]))
        let (client, server) = try connect(nodeContext, distrusting)
        #expect(!server.isResumed)
        #expect(server.handshakeState.failure?.code == .untrustedCertificate)
        #expect(server.peerIdentity == nil)
        _ = client
    }

    @Test func ticketsFromKeysTheServerNoLongerHasGetAFullHandshake() throws {
        defer { cleanUp() }
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let nodeContext = try client(node)
        _ = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        try FileManager.default.removeItem(atPath: keysPath)
        let fresh = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        #expect(fresh.server.handshakeState.isDone && !fresh.server.isResumed)
        #expect(fresh.server.peerIdentity?.name == "node-17")
    }

    @Test func anEnrollmentConnectionNeverResumesANodesSession() throws {
        defer { cleanUp() }
        let node = try pki.clientIdentity(TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA)
        let serverContext = try server(TicketKeyRing(path: keysPath, now: currentTime()))
        let nodeContext = try client(node)
        _ = try dial(nodeContext, serverContext)
        // The node's ticket, offered on a connection that asks only for enrollment.
        let enrolling = try client(node, protocols: [enrollProtocol])
        enrolling.sessions?.keep(try #require(nodeContext.sessions?.entry(for: gatewayHost)), for: gatewayHost)
        let (client, server) = try connect(enrolling, serverContext)
        #expect(client.offeredSession != nil)
        #expect(server.handshakeState.isDone && server.isEnrollment && !server.isResumed)
    }

    @Test func onlyTheResumableProtocolGetsTickets() throws {
        defer { cleanUp() }
        let alice = try pki.clientIdentity(TunnelIdentity(role: .operator, name: "alice"), issuer: pki.operatorCA)
        let operatorContext = try client(alice, protocols: [operatorProtocol])
        let serverContext = try server(TicketKeyRing(path: keysPath, now: currentTime()))
        let first = try dial(operatorContext, serverContext)
        #expect(first.server.handshakeState.isDone)
        #expect(operatorContext.sessions?.entry(for: gatewayHost) == nil)
        #expect(!(try dial(operatorContext, serverContext)).server.isResumed)
    }

    @Test func aTicketLivesNoLongerThanTheClientCertificate() throws {
        defer { cleanUp() }
        let shortLived = try pki.clientIdentity(
            TunnelIdentity(role: .node, name: "node-17"), issuer: pki.nodeCA,
            validity: CertificateValidity(now: currentTime(), lifetime: 600, backdate: 0))
        let nodeContext = try client(shortLived)
        _ = try dial(nodeContext, try server(TicketKeyRing(path: keysPath, now: currentTime())))
        let kept = try #require(nodeContext.sessions?.entry(for: gatewayHost))
        let lifetime = SSL_SESSION_get_ticket_lifetime_hint(kept.session)
        #expect(lifetime > 500 && lifetime <= 600, "ticket lifetime \(lifetime) s")
    }

    @Test func theKeyFileIsPrivateRotatesAndForgetsOldKeys() throws {
        defer { cleanUp() }
        let start = currentTime()
        let ring = try TicketKeyRing(path: keysPath, now: start)
        var status = stat()
        #expect(stat(keysPath, &status) == 0 && status.st_mode & 0o777 == 0o600)
        let first = try #require(ring.sealingKey)
        #expect(try !ring.rotateIfDue(now: start + 60))

        #expect(try ring.rotateIfDue(now: start + TicketKeyRing.rotationSeconds))
        let second = try #require(ring.sealingKey)
        #expect(second != first)
        // The old key still opens tickets (their holders get a new one), until none can be live.
        #expect(first.name.withUnsafeBufferPointer { ring.openingKey(named: $0.baseAddress!)?.isNewest } == false)
        let reloaded = try TicketKeyRing(path: keysPath, now: start + TicketKeyRing.rotationSeconds + 1)
        #expect(reloaded.sealingKey == second)

        _ = try ring.rotateIfDue(now: start + TicketKeyRing.rotationSeconds + TicketKeyRing.ticketLifetime)
        #expect(first.name.withUnsafeBufferPointer { ring.openingKey(named: $0.baseAddress!) } == nil)
    }

    @Test func aDamagedKeyFileIsRefusedWithTheFix() throws {
        defer { cleanUp() }
        try DurableFile.write(path: keysPath, bytes: Array("not keys\n".utf8), mode: 0o600)
        let error = #expect(throws: TLSError.self) { try TicketKeyRing(path: keysPath, now: currentTime()) }
        #expect(error?.message.contains("delete it and restart the gateway") == true)
    }
}
