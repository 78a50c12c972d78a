import Foundation
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelRuntime
import TunnelTLS
import TunnelText

// Nodes at the gateway: their requests (announcements, renewals) on a live session, and
// enrollment of new and returning nodes. Which session is a node's is the core's.
extension Gateway {
    func handleNodeRequest(from name: String, connection: MuxConnection, stream: StreamID, metadata: [UInt8]) {
        switch TunnelProtocol.decode(NodeRequest.self, from: metadata) {
        case .announce(let announcement):
            receiveAnnouncement(announcement, from: name, connection: connection, stream: stream)
        case .renew(let csr):
            guard let presented = connection.peerCertificate else {
                return connection.reset(stream, code: TunnelErrorCode.badRequest)
            }
            do {
                let (pem, notAfter) = try authority.renewNode(name: name, presented: presented, csr: csr)
                core.renewed(ObjectIdentifier(connection), notAfter: notAfter)
                logger.info(
                    "node certificate renewed",
                    metadata: ["node.name": "\(name)", "certificate.not_after": "\(isoTime(notAfter))"])
                audit?.record(.nodeRenew(auditPeer(connection), Renewal(node: name, outcome: .ok, notAfter: notAfter)))
                connection.reply(CertificateReply(gatewayTime: authority.now, certificate: pem), on: stream)
            } catch {
                logger.notice("node renewal refused", metadata: ["node.name": "\(name)", "reason": "\(error.message)"])
                audit?.record(
                    .nodeRenew(auditPeer(connection), Renewal(node: name, outcome: .refused, reason: error.message)))
                connection.reply(
                    CertificateReply(gatewayTime: authority.now, error: error.message, errorCode: error.code),
                    on: stream)
            }
        case nil:
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }

    func receiveAnnouncement(
        _ announcement: NodeAnnouncement, from name: String, connection: MuxConnection, stream: StreamID
    ) {
        switch core.announced(ObjectIdentifier(connection), announcement) {
        case nil:
            do {
                try connection.accept(stream, handler: DiscardingHandler(connection: connection, stream: stream))
                connection.finish(stream)
            } catch {
                connection.reset(stream, code: .cancel)
            }
        case .badName(let reason):
            logger.notice("node announcement refused", metadata: ["node.name": "\(name)", "reason": "\(reason)"])
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        case .notLive:
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }

    // MARK: - Enrollment

    func handleEnrollment(_ connection: MuxConnection, stream: StreamID, metadata: [UInt8]) {
        guard admitEnrollmentRequest(connection, stream: stream) else { return }
        defer { enrollmentServed(connection) }
        let now = authority.now
        let address = connection.remoteAddress
        switch TunnelProtocol.decode(EnrollmentRequest.self, from: metadata) {
        case .time:
            connection.reply(CertificateReply(gatewayTime: now), on: stream)
        case .redeem(let request):
            if let malformation = request.malformation {
                enrollmentRefused(connection, reason: .malformed, detail: malformation)
                return connection.reply(
                    CertificateReply(gatewayTime: now, error: "\(malformation): \(JoinToken.shape)"), on: stream)
            }
            do {
                let pem = try authority.redeem(request, from: address)
                let subject = (try? Certificate.chainFromPEM(Array(pem.utf8)).first?.tunnelIdentity().name) ?? nil
                logger.notice(
                    "node enrolled",
                    metadata: [
                        "node.name": "\(subject ?? "?")", "token.id": "\(request.tokenID)",
                        "peer.address": "\(address)",
                    ])
                audit?.record(
                    .enroll(auditPeer(connection), Enrollment(token: request.tokenID, node: subject)), durable: true)
                connection.reply(CertificateReply(gatewayTime: now, certificate: pem), on: stream)
            } catch {
                enrollmentRefused(connection, reason: .tokenRefused, detail: error.message)
                connection.reply(CertificateReply(gatewayTime: now, error: error.message), on: stream)
            }
        case .reenroll(let csr):
            guard let identity = connection.peerIdentity, identity.role == .node,
                connection.verifiedBy?.kind == .node, let presented = connection.peerCertificate
            else {
                connection.reply(
                    CertificateReply(
                        gatewayTime: now, error: "re-enrollment needs the node's previous certificate in the handshake"),
                    on: stream)
                return
            }
            do {
                let pem = try authority.reenroll(name: identity.name, presented: presented, csr: csr)
                logger.notice(
                    "node re-enrolled with its expired certificate",
                    metadata: ["node.name": "\(identity.name)", "peer.address": "\(address)"])
                audit?.record(.reenroll(auditPeer(connection), Enrollment(node: identity.name)), durable: true)
                connection.reply(CertificateReply(gatewayTime: now, certificate: pem), on: stream)
            } catch {
                enrollmentRefused(connection, reason: .reenrollRefused, detail: "\(identity.name): \(error.message)")
                connection.reply(
                    CertificateReply(gatewayTime: now, error: error.message, errorCode: error.code), on: stream)
            }
        case nil:
            enrollmentRefused(connection, reason: .unreadable, detail: "\(metadata.count) bytes")
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }
}
