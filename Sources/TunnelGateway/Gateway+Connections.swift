import Foundation
import Multiplex
import TunnelAudit
import TunnelRuntime
import TunnelTLS

// The connections' life at the gateway: classified by ALPN, CA kind and identity when the
// handshake is done, their streams dispatched by role, and their end recorded.
extension Gateway: MuxConnectionDelegate {
    public func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        let key = ObjectIdentifier(connection)
        if let outbound = outboundPeerEstablished(connection) { return outbound }
        if connection.applicationProtocol == TunnelProtocol.enrollALPN {
            connections[key] = .enrolling(connection)
            metrics.handshake(kind: "enroll", admitted: true)
            return enrollmentStarted(connection)
        }
        guard let identity = connection.peerIdentity, let verifiedBy = connection.verifiedBy,
            let certificate = connection.peerCertificate
        else {
            return Failure(TunnelErrorCode.wrongRole, "no verified tunnel identity")
        }
        switch connection.applicationProtocol {
        case TunnelProtocol.nodeALPN:
            guard verifiedBy.kind == .node, identity.role == .node else {
                return Failure(
                    TunnelErrorCode.wrongRole,
                    "certificate of \(identity.role.rawValue) \(identity.name) cannot connect as a node; use a node certificate"
                )
            }
            if let refusal = authority.admitNode(identity.name, certificate: certificate) {
                audit?.record(
                    .connectionRefused(
                        auditPeer(connection), ConnectionRefused(node: identity.name, reason: refusal.message)))
                return Failure(TunnelErrorCode.revoked, refusal.message)
            }
            registerNode(identity.name, connection: connection)
        case TunnelProtocol.operatorALPN:
            guard verifiedBy.kind == .operator, identity.role == .operator else {
                return Failure(
                    TunnelErrorCode.wrongRole,
                    "certificate of \(identity.role.rawValue) \(identity.name) cannot connect as an operator; use an operator certificate"
                )
            }
            if let refusal = authority.admitOperator(identity.name, certificate: certificate) {
                audit?.record(
                    .connectionRefused(
                        auditPeer(connection), ConnectionRefused(operatorName: identity.name, reason: refusal.message)))
                return Failure(TunnelErrorCode.revoked, refusal.message)
            }
            connections[key] = .operator(identity.name, connection)
            audit?.record(
                .operatorConnect(auditOperator(identity.name, connection, roles: authority.roles(of: identity.name))))
            logger.info(
                "operator connected",
                metadata: ["operator.name": "\(identity.name)", "peer.address": "\(connection.remoteAddress)"])
        case TunnelProtocol.peerALPN:
            guard verifiedBy.kind == .node, identity.role == .gateway else {
                return Failure(
                    TunnelErrorCode.wrongRole,
                    "certificate of \(identity.role.rawValue) \(identity.name) cannot open a peer link; only a replica's gateway-peer certificate can"
                )
            }
            connections[key] = .peer(identity.name, connection)
            audit?.record(.peerConnect(auditPeer(connection), PeerLink(peerReplica: identity.name)))
        default:
            return Failure(TunnelErrorCode.wrongRole, "unknown application protocol")
        }
        certificateDeadlines[key] = certificate.notAfter
        admission.authenticated(key, now: loop.now)
        return nil
    }

    public func connection(
        _ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        switch connections[ObjectIdentifier(connection)] {
        case .node(let name, _):
            handleNodeRequest(from: name, connection: connection, stream: stream, metadata: metadata)
        case .operator(let name, _):
            handleOperatorRequest(
                from: name, connection: connection, stream: stream, metadata: metadata, interactive: interactive)
        case .enrolling:
            handleEnrollment(connection, stream: stream, metadata: metadata)
        case .peer(let replica, _):
            handlePeerRequest(
                from: replica, connection: connection, stream: stream, metadata: metadata, interactive: interactive)
        case .unclassified, nil:
            connection.reset(stream, code: .refusedStream)
        }
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let key = ObjectIdentifier(connection)
        peerLinkClosed(connection, failure: failure)
        let peer = connections.removeValue(forKey: key)
        certificateDeadlines[key] = nil
        admission.closed(key)
        handshakes.closed(key)
        switch peer {
        case .node(let name, _):
            let reason =
                failure.code == .keepaliveTimeout
                ? "network lost (no keepalive answer)" : "disconnected: \(failure.reason)"
            if nodes[name]?.connection === connection {
                cluster?.sessionEnded(node: name)
                nodes[name]?.connection = nil
                nodes[name]?.lastDisconnectReason = reason
                groupCommit.nodeSeen(name, NodeSighting(at: authority.now, disconnectReason: reason))
                logger.info("node disconnected", metadata: ["node.name": "\(name)", "reason": "\(failure)"])
            }
            audit?.record(.nodeDisconnect(auditPeer(connection), NodeDisconnect(node: name, reason: reason)))
        case .operator(let name, _):
            audit?.record(
                .operatorDisconnect(auditPeer(connection), OperatorDisconnect(name: name, reason: failure.reason)))
        case .peer(let name, _):
            audit?.record(.peerDisconnect(auditPeer(connection), PeerLink(peerReplica: name, reason: failure.reason)))
        case .enrolling, .unclassified, nil:
            break
        }
        sessionIDs[key] = nil
        finishStopIfDrained()
    }
}
