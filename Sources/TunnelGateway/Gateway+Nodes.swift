import Foundation
import Multiplex
import TunnelAudit
import TunnelRuntime
import TunnelTLS
import TunnelText

// Nodes at the gateway: a node's session taking its place, its requests (announcements,
// renewals), and enrollment of new and returning nodes.
extension Gateway {
    func registerNode(_ name: String, connection: MuxConnection) {
        var record = nodes[name] ?? NodeRecord(name: name)
        if let stale = record.connection {
            logger.notice(
                "node reconnected; replacing its older session",
                metadata: [
                    "node.name": "\(name)", "peer.address": "\(connection.remoteAddress)",
                    "old.address": "\(stale.remoteAddress)",
                ])
            connections[ObjectIdentifier(stale)] = .unclassified(stale)
            audit?.record(
                .nodeDisconnect(
                    auditPeer(stale),
                    NodeDisconnect(
                        node: name, reason: "replaced by a newer session", replacedBy: connection.remoteAddress)))
            stale.abort(
                Failure(
                    TunnelErrorCode.replaced, "replaced by a newer session of \(name) from \(connection.remoteAddress)")
            )
            record.lastDisconnectReason =
                "replaced by a newer session from \(connection.remoteAddress) (the replaced one was from \(stale.remoteAddress))"
            if let count = record.takeovers.recordTakeover(now: loop.now) {
                logger.warning(
                    "one node identity is in use on two machines: their sessions keep replacing each other; give each machine its own node key",
                    metadata: [
                        "node.name": "\(name)", "peer.address": "\(connection.remoteAddress)",
                        "old.address": "\(stale.remoteAddress)",
                        "takeovers": "\(count) within \(TakeoverWatch.windowMilliseconds / 1000) s",
                    ])
            }
            if record.takeovers.isFlapping(now: loop.now) {
                record.lastDisconnectReason! +=
                    "; sessions keep replacing each other: two machines may share this node's key"
            }
        }
        record.connection = connection
        record.epoch = cluster?.sessionStarted(node: name).map { Int($0) } ?? record.epoch + 1
        record.remoteAddress = connection.remoteAddress
        record.connectedSince = Date()
        record.previousSessionEnded = record.lastDisconnectReason
        nodes[name] = record
        connections[ObjectIdentifier(connection)] = .node(name, connection)
        groupCommit.nodeSeen(name, NodeSighting(at: authority.now, address: connection.remoteAddress))
        audit?.record(
            .nodeConnect(
                auditPeer(connection),
                NodeConnect(
                    node: name, nodeSerial: connection.peerCertificate?.serialNumberHex, epoch: Int64(record.epoch))))
        logger.info(
            "node connected",
            metadata: [
                "node.name": "\(name)", "peer.address": "\(connection.remoteAddress)", "node.epoch": "\(record.epoch)",
            ])
    }

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
                certificateDeadlines[ObjectIdentifier(connection)] = notAfter
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
        guard var record = nodes[name], record.connection === connection else {
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        // What a node says about itself is listed to operators: its names must follow the rules.
        do throws(NameProblem) {
            for service in announcement.services { try Names.check(service, as: .service) }
            try Names.checkLabels(announcement.labels)
        } catch {
            logger.notice(
                "node announcement refused", metadata: ["node.name": "\(name)", "reason": "\(error.message)"])
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        if let lastBoot = record.lastBootID, lastBoot != announcement.bootID {
            record.previousSessionEnded =
                "node rebooted (up \(Int(announcement.uptimeSeconds)) s); before that: \(record.previousSessionEnded ?? "first session")"
        }
        record.lastBootID = announcement.bootID
        record.announcement = announcement
        nodes[name] = record
        do {
            try connection.accept(stream, handler: DiscardingHandler(connection: connection, stream: stream))
            connection.finish(stream)
        } catch {
            connection.reset(stream, code: .cancel)
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
