import Foundation
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelRuntime
import TunnelTLS

// The connections' life at the gateway: classified by the core (ALPN, CA kind and identity) when
// the handshake is done, checked against the fleet store, their streams dispatched by role, and
// their end recorded.
extension Gateway: MuxConnectionDelegate {
    public func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        let key = ObjectIdentifier(connection)
        if let outbound = outboundPeerEstablished(connection) { return outbound }
        let certificate = Self.peerCertificate(of: connection)
        if connection.isResumed { metrics.resumedHandshake() }
        let classification = GatewayCore<ObjectIdentifier>.classify(
            alpn: connection.applicationProtocol, certificate: certificate)
        switch classification {
        case .refuse(let failure):
            return failure
        case .enrolling:
            core.enrolling(key)
            metrics.handshake(kind: "enroll", admitted: true)
            return enrollmentStarted(connection)
        case .node(let name), .operator(let name):
            guard let certificate, let presented = connection.peerCertificate else {
                return Failure(TunnelErrorCode.wrongRole, "no verified tunnel identity")
            }
            let refusal =
                classification == .node(name)
                ? authority.admitNode(name, certificate: presented)
                : authority.admitOperator(name, certificate: presented)
            if let refusal {
                enact(core.credentialRefused(key, classification, reason: refusal.message))
                return Failure(TunnelErrorCode.revoked, refusal.message)
            }
            if classification == .node(name) {
                let epoch = cluster?.sessionStarted(node: name)
                enact(core.nodeAuthenticated(key, certificate: certificate, clusterEpoch: epoch, now: moment))
            } else {
                enact(core.operatorAuthenticated(key, certificate: certificate, roles: authority.roles(of: name)))
            }
        case .peer(let replica):
            enact(core.peerAuthenticated(key, replica: replica, certificate: certificate))
        }
        admission.authenticated(key, now: loop.now)
        handshakePlaceFreed()
        return nil
    }

    public func connection(
        _ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        switch core.connections[ObjectIdentifier(connection)]?.role {
        case .node(let name):
            handleNodeRequest(from: name, connection: connection, stream: stream, metadata: metadata)
        case .operator(let name):
            handleOperatorRequest(
                from: name, connection: connection, stream: stream, metadata: metadata, interactive: interactive)
        case .enrolling:
            handleEnrollment(connection, stream: stream, metadata: metadata)
        case .peer(let replica):
            handlePeerRequest(
                from: replica, connection: connection, stream: stream, metadata: metadata, interactive: interactive)
        case .handshaking, .replaced, nil:
            connection.reset(stream, code: .refusedStream)
        }
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let key = ObjectIdentifier(connection)
        peerLinkClosed(connection, failure: failure)
        connections[key] = nil
        admission.closed(key)
        handshakes.closed(key)
        handshakePlaceFreed()
        enact(core.closed(key, failure: failure, now: moment))
        finishStopIfDrained()
    }
}
