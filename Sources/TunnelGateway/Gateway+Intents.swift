import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelRuntime
import TunnelTLS

/// The IO side of one open connection. Everything else the gateway knows of it is the core's
/// `ConnectionRecord`, under the same id.
struct ConnectionHandle {
    let connection: MuxConnection
}

// The shell's side of `GatewayCore`: what it feeds the core (the clocks, the facts of a
// handshake) and how it carries out the core's intents. No decision is made here.
extension Gateway {
    /// Both clocks the core reads, now.
    var moment: Moment { Moment(loop: loop.now, unix: Date().timeIntervalSince1970) }

    /// A connection accepted or dialed: known to the core by its id, with a random session id
    /// that ties the audit records of the session together.
    func opened(_ connection: MuxConnection) {
        let id = ObjectIdentifier(connection)
        connections[id] = ConnectionHandle(connection: connection)
        core.opened(
            id, sessionID: Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255) }),
            remoteAddress: connection.remoteAddress)
    }

    /// Carries out the core's intents, in order.
    func enact(_ intents: [GatewayCore<ObjectIdentifier>.Intent]) {
        for intent in intents {
            switch intent {
            case .record(let event, let durable):
                audit?.record(event, durable: durable)
            case .abort(let id, let failure):
                connections[id]?.connection.abort(failure)
            case .log(let level, let message, let metadata):
                logger.log(level: level, message, metadata: metadata)
            case .nodeSeen(let name, let sighting):
                groupCommit.nodeSeen(name, sighting)
            case .presenceEnded(let node):
                cluster?.sessionEnded(node: node)
            case .refuseStream(let id, let stream, let code, let sentence):
                guard let connection = connections[id]?.connection else { continue }
                refuseStream(stream, on: connection, code: code, message: sentence)
            case .countUnrecordedStream(let operatorName, let outcome):
                streamRecords.count(operatorName, outcome: outcome)
            case .openRelay(let request, let link):
                openRelay(request, via: link)
            }
        }
    }

    /// What the verified handshake showed of the peer's certificate, for the core; nil when the
    /// peer presented none (enrollment) or it was not verified.
    static func peerCertificate(of connection: MuxConnection) -> PeerCertificate? {
        guard let identity = connection.peerIdentity, let verifiedBy = connection.verifiedBy,
            let certificate = connection.peerCertificate
        else { return nil }
        let issuer: PeerCertificate.Issuer =
            switch verifiedBy.kind {
            case .node: .node
            case .operator: .operator
            case .gateway, .kubernetesAPI, .pinned: .other
            }
        let role: PeerCertificate.Role =
            switch identity.role {
            case .node: .node
            case .operator: .operator
            case .gateway: .gateway
            }
        return PeerCertificate(
            issuer: issuer, role: role, name: identity.name, uri: identity.uri, serial: certificate.serialNumberHex,
            notAfter: certificate.notAfter)
    }
}

extension Gateway {
    /// The connection of `node`'s live session here, if any.
    func liveSession(of node: String) -> MuxConnection? {
        core.liveSession(of: node).flatMap { connections[$0]?.connection }
    }
}

extension Gateway {
    /// The core's limits on one node's streams, from the settings.
    static func streamLimits(_ configuration: GatewayConfiguration) -> StreamLimits {
        let admission = configuration.admission
        return StreamLimits(
            nodeCapacity: Int(configuration.session.maxConcurrentStreams),
            streamsPerOperatorPerNode: admission.streamsPerOperatorPerNode,
            adminReservedStreamsPerNode: admission.adminReservedStreamsPerNode,
            nodeResetAllowance: configuration.session.maxResetsPerWindow,
            streamRecordsPerMinute: admission.streamRecordsPerOperatorPerMinute,
            streamRecordBurst: TokenBucket.burst(perMinute: admission.streamRecordsPerOperatorPerMinute))
    }
}
