import Multiplex
import Testing
import TunnelAudit
import TunnelGatewayCore
import TunnelWire

/// Connections in the core: told apart after the handshake, recorded as they come and go, and
/// closed when their certificate runs out — on a virtual clock.
@Suite("GatewayCore: connections")
struct ConnectionTests {
    @Test("the ALPN protocol, the verifying CA and the certificate's role must agree")
    func classification() {
        func classify(_ alpn: String?, _ certificate: PeerCertificate?) -> Core.Classification {
            Core.classify(alpn: alpn, certificate: certificate)
        }
        #expect(classify(TunnelProtocol.nodeALPN, certificate(.node, "n1")) == .node("n1"))
        #expect(classify(TunnelProtocol.operatorALPN, certificate(.operator, "alice")) == .operator("alice"))
        #expect(classify(TunnelProtocol.peerALPN, certificate(.gateway, "r2")) == .peer("r2"))
        #expect(classify(TunnelProtocol.enrollALPN, nil) == .enrolling)
        // An expired node certificate on an enrollment connection is still enrollment.
        #expect(classify(TunnelProtocol.enrollALPN, certificate(.node, "n1")) == .enrolling)

        func refusal(_ classification: Core.Classification) -> Failure? {
            if case .refuse(let failure) = classification { failure } else { nil }
        }
        let operatorAsNode = refusal(classify(TunnelProtocol.nodeALPN, certificate(.operator, "alice")))
        #expect(operatorAsNode?.code == TunnelErrorCode.wrongRole)
        #expect(
            operatorAsNode?.reason == "certificate of operator alice cannot connect as a node; use a node certificate")
        // A node-role certificate from the operator CA is no node, and no operator either.
        #expect(refusal(classify(TunnelProtocol.nodeALPN, certificate(.node, "n1", issuer: .operator))) != nil)
        #expect(refusal(classify(TunnelProtocol.operatorALPN, certificate(.operator, "a", issuer: .node))) != nil)
        #expect(refusal(classify(TunnelProtocol.operatorALPN, certificate(.operator, "a", issuer: .other))) != nil)
        #expect(
            refusal(classify(TunnelProtocol.peerALPN, certificate(.node, "n1")))?.reason
                == "certificate of node n1 cannot open a peer link; only a replica's gateway-peer certificate can")
        #expect(refusal(classify(TunnelProtocol.nodeALPN, nil))?.reason == "no verified tunnel identity")
        #expect(refusal(classify("h2", certificate(.node, "n1")))?.reason == "unknown application protocol")
        #expect(refusal(classify(nil, certificate(.node, "n1"))) != nil)
    }

    @Test("an operator's connect and disconnect are recorded with its session, certificate and roles")
    func operatorRecords() {
        var core = makeCore()
        core.opened(7, sessionID: "abc", remoteAddress: "192.0.2.1:4000")
        #expect(core.connections[7]?.role == .handshaking)
        let connected = core.operatorAuthenticated(7, certificate: certificate(.operator, "alice"), roles: ["admin"])
        let actor = AuditOperator(
            peer: AuditPeer(session: "abc", source: "192.0.2.1:4000"), name: "alice",
            subject: "tunnel://operator/alice", serial: "serial-alice", roles: ["admin"])
        #expect(connected.records == [.operatorConnect(actor)])
        #expect(core.auditOperator(7, roles: ["ops"])?.roles == ["ops"])
        #expect(core.connections(ofOperator: "alice") == [7])
        #expect(core.connectionKinds == ["operator": 1])
        let closed = core.closed(7, failure: Failure(.noError, "bye"), now: at(1))
        #expect(closed.records == [.operatorDisconnect(actor.peer, OperatorDisconnect(name: "alice", reason: "bye"))])
        #expect(core.connections.isEmpty)
        #expect(core.closed(7, failure: Failure(.noError, "again"), now: at(2)).isEmpty)
    }

    @Test("a refused certificate is recorded as a refused connection naming who tried")
    func refusedCredential() {
        var core = makeCore()
        core.opened(1, sessionID: "s1", remoteAddress: "a")
        let node = core.credentialRefused(1, .node("n1"), reason: "revoked")
        #expect(
            node.records == [
                .connectionRefused(
                    AuditPeer(session: "s1", source: "a"), ConnectionRefused(node: "n1", reason: "revoked"))
            ])
        let person = core.credentialRefused(1, .operator("bob"), reason: "unknown")
        #expect(
            person.records == [
                .connectionRefused(
                    AuditPeer(session: "s1", source: "a"), ConnectionRefused(operatorName: "bob", reason: "unknown"))
            ])
        // Nothing was authenticated: closing it records nothing.
        #expect(core.closed(1, failure: Failure(.noError, ""), now: at(0)).isEmpty)
    }

    @Test("a session is cut when its certificate expires, not a second before; a renewal on it moves the deadline")
    func certificateDeadlines() {
        var core = makeCore()
        _ = core.connectNode(1, "n1", lifetime: 60)
        _ = core.operatorAuthenticatedAfterOpening(2, "alice", lifetime: 90)
        core.opened(3, sessionID: "s3", remoteAddress: "e")
        core.enrolling(3)
        #expect(core.expireCertificates(now: at(59)).isEmpty)
        let first = core.expireCertificates(now: at(60))
        #expect(first.aborts.map(\.0) == [1])
        #expect(
            first.aborts.first?.1
                == Failure(
                    TunnelErrorCode.revoked, "your certificate expired at t\(Int64(start) + 60) and was not renewed"))
        #expect(first.logged(.notice) == ["closing a session whose certificate expired"])
        // Told once: the connection is closing.
        #expect(core.expireCertificates(now: at(61)).isEmpty)

        core.renewed(2, notAfter: Int64(start) + 200)
        #expect(core.expireCertificates(now: at(100)).isEmpty)
        #expect(core.expireCertificates(now: at(200)).aborts.map(\.0) == [2])
        // An enrolling connection has no certificate deadline (its own one runs elsewhere),
        // and a renewal cannot give it one.
        core.renewed(3, notAfter: Int64(start) + 10)
        #expect(core.expireCertificates(now: at(10_000)).isEmpty)
    }

    @Test("a peer link is recorded both ways; only an inbound one carries a certificate deadline")
    func peerLinks() {
        var core = makeCore()
        core.opened(1, sessionID: "in", remoteAddress: "r2:1")
        core.opened(2, sessionID: "out", remoteAddress: "r3:1")
        let inbound = core.peerAuthenticated(1, replica: "r2", certificate: certificate(.gateway, "r2", lifetime: 5))
        #expect(
            inbound.records == [.peerConnect(AuditPeer(session: "in", source: "r2:1"), PeerLink(peerReplica: "r2"))])
        _ = core.peerAuthenticated(2, replica: "r3", certificate: nil)
        #expect(core.peerLinks(of: "r2") == [1] && core.peerLinks(of: "r3") == [2])
        #expect(core.expireCertificates(now: at(5)).aborts.map(\.0) == [1])
        let down = core.closed(2, failure: Failure(.noError, "gone"), now: at(6))
        #expect(
            down.records == [
                .peerDisconnect(AuditPeer(session: "out", source: "r3:1"), PeerLink(peerReplica: "r3", reason: "gone"))
            ])
    }
}

extension Core {
    mutating func operatorAuthenticatedAfterOpening(_ id: Int, _ name: String, lifetime: Int64) -> [Intent] {
        opened(id, sessionID: "s\(id)", remoteAddress: "o\(id)")
        return operatorAuthenticated(id, certificate: certificate(.operator, name, lifetime: lifetime), roles: [])
    }
}
