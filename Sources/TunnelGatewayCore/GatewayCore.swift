import Logging
import Multiplex
import TunnelAudit
import TunnelWire

/// The gateway's connections and node sessions, sans IO: what each connection is once its
/// handshake is done, which session is each node's live one (the newest authenticated one wins,
/// with a new epoch), and which sessions outlived their certificates. It takes events and `now`
/// and returns intents (`GatewayIntent`) that the `Gateway` shell carries out, like quinn-proto's
/// `Endpoint` under its driver. One `ConnectionRecord` per connection holds everything known of
/// it. `ID` is the shell's handle on a connection. Loop-confined, like its shell.
package struct GatewayCore<ID: Hashable> {
    package typealias Intent = GatewayIntent<ID>

    package internal(set) var connections: [ID: ConnectionRecord] = [:]
    /// No session's certificate deadline comes before this (Unix seconds). It may be earlier than
    /// the earliest left (a session closed or renewed since), never later: `expireCertificates`
    /// walks the sessions only once it has come, since walking 10,000 records every second was
    /// 13 % of an idle gateway's CPU.
    private var nextCertificateDeadline = Int64.max
    /// Nodes seen in this run, online or not (the fleet store has every enrolled one).
    package internal(set) var nodes: [String: NodeRecord<ID>] = [:]
    let limits: StreamLimits
    /// Each operator's share of each node's streams.
    var streamShare: StreamShare
    /// Per node: the resets passed on to it for operators, so together they cannot spend its allowance.
    var relayedResets: [String: RelayedResetBudget] = [:]
    /// How Unix seconds read in sentences to peers (the shell passes its UTC formatter).
    let timeText: (Int64) -> String

    package init(limits: StreamLimits, timeText: @escaping (Int64) -> String) {
        self.limits = limits
        streamShare = StreamShare(limits: limits)
        self.timeText = timeText
    }

    // MARK: - Connections

    /// A connection was accepted, or a peer link dialed: it is handshaking.
    package mutating func opened(_ id: ID, sessionID: String, remoteAddress: String) {
        connections[id] = ConnectionRecord(sessionID: sessionID, remoteAddress: remoteAddress)
    }

    /// What a finished handshake makes of a connection, before the fleet store is asked.
    package enum Classification: Equatable {
        case enrolling
        case node(String)
        case `operator`(String)
        case peer(String)
        /// Not a connection this gateway serves: close it with this failure.
        case refuse(Failure)
    }

    /// Tells connections apart by the ALPN protocol the handshake chose, the CA that verified
    /// the certificate and the role in it; all three must agree.
    package static func classify(alpn: String?, certificate: PeerCertificate?) -> Classification {
        if alpn == TunnelProtocol.enrollALPN { return .enrolling }
        guard let certificate else { return .refuse(Failure(TunnelErrorCode.wrongRole, "no verified tunnel identity")) }
        let (issuer, role, name) = (certificate.issuer, certificate.role, certificate.name)
        func wrong(_ sentence: String) -> Classification {
            .refuse(Failure(TunnelErrorCode.wrongRole, "certificate of \(role.rawValue) \(name) \(sentence)"))
        }
        switch alpn {
        case TunnelProtocol.nodeALPN:
            return issuer == .node && role == .node
                ? .node(name) : wrong("cannot connect as a node; use a node certificate")
        case TunnelProtocol.operatorALPN:
            return issuer == .operator && role == .operator
                ? .operator(name) : wrong("cannot connect as an operator; use an operator certificate")
        case TunnelProtocol.peerALPN:
            return issuer == .node && role == .gateway
                ? .peer(name)
                : wrong("cannot open a peer link; only a replica's gateway-peer certificate can")
        default:
            return .refuse(Failure(TunnelErrorCode.wrongRole, "unknown application protocol"))
        }
    }

    package mutating func enrolling(_ id: ID) {
        connections[id]?.role = .enrolling
    }

    /// The fleet store refused a node's or operator's certificate (unknown, revoked, replaced).
    package func credentialRefused(_ id: ID, _ classification: Classification, reason: String) -> [Intent] {
        guard let record = connections[id] else { return [] }
        switch classification {
        case .node(let name):
            return [.record(.connectionRefused(record.auditPeer, ConnectionRefused(node: name, reason: reason)))]
        case .operator(let name):
            return [
                .record(.connectionRefused(record.auditPeer, ConnectionRefused(operatorName: name, reason: reason)))
            ]
        case .enrolling, .peer, .refuse:
            return []
        }
    }

    package mutating func operatorAuthenticated(_ id: ID, certificate: PeerCertificate, roles: [String]) -> [Intent] {
        guard connections[id] != nil else { return [] }
        authenticate(id, as: .operator(certificate.name), certificate: certificate)
        guard let actor = auditOperator(id, roles: roles) else { return [] }
        return [
            .record(.operatorConnect(actor)),
            .log(
                .info, "operator connected",
                ["operator.name": "\(certificate.name)", "peer.address": "\(actor.peer.source)"]),
        ]
    }

    /// Another replica's peer link is up; `certificate` is nil for a link this replica dialed
    /// (its certificate is the cluster's own, and is not renewed).
    package mutating func peerAuthenticated(_ id: ID, replica: String, certificate: PeerCertificate?) -> [Intent] {
        guard let record = connections[id] else { return [] }
        authenticate(id, as: .peer(replica), certificate: certificate)
        return [.record(.peerConnect(record.auditPeer, PeerLink(peerReplica: replica)))]
    }

    mutating func authenticate(_ id: ID, as role: ConnectionRole, certificate: PeerCertificate?) {
        connections[id]?.role = role
        connections[id]?.certificate = certificate
        connections[id]?.certificateDeadline = certificate?.notAfter
        if let notAfter = certificate?.notAfter { nextCertificateDeadline = min(nextCertificateDeadline, notAfter) }
    }

    /// A certificate was renewed on this session: it may live until the new one expires.
    package mutating func renewed(_ id: ID, notAfter: Int64) {
        guard connections[id]?.certificateDeadline != nil else { return }
        connections[id]?.certificateDeadline = notAfter
        nextCertificateDeadline = min(nextCertificateDeadline, notAfter)
    }

    /// Sessions whose certificate expired without a renewal on that session are closed: a
    /// certificate's short life is only worth something if it bounds the session too.
    package mutating func expireCertificates(now: Moment) -> [Intent] {
        guard now.unixSeconds >= nextCertificateDeadline else { return [] }
        nextCertificateDeadline =
            connections.values.lazy.compactMap(\.certificateDeadline)
            .filter { $0 > now.unixSeconds }.min() ?? .max
        var intents: [Intent] = []
        for (id, record) in connections {
            guard let deadline = record.certificateDeadline, deadline <= now.unixSeconds else { continue }
            connections[id]?.certificateDeadline = nil
            intents += [
                .log(
                    .notice, "closing a session whose certificate expired", ["peer.address": "\(record.remoteAddress)"]),
                .abort(
                    id,
                    Failure(
                        TunnelErrorCode.revoked, "your certificate expired at \(timeText(deadline)) and was not renewed"
                    )),
            ]
        }
        return intents
    }

    /// The connection closed (for any reason): its record goes, and what it was is recorded.
    package mutating func closed(_ id: ID, failure: Failure, now: Moment) -> [Intent] {
        guard let record = connections.removeValue(forKey: id) else { return [] }
        let peer = record.auditPeer
        switch record.role {
        case .node(let name):
            return nodeSessionEnded(name, id, failure: failure, peer: peer, now: now)
        case .operator(let name):
            return [.record(.operatorDisconnect(peer, OperatorDisconnect(name: name, reason: failure.reason)))]
        case .peer(let replica):
            return [.record(.peerDisconnect(peer, PeerLink(peerReplica: replica, reason: failure.reason)))]
        case .handshaking, .enrolling, .replaced:
            return []
        }
    }

    // MARK: - Looking up

    /// The audit fields naming a connection's peer: session id and source address.
    package func auditPeer(_ id: ID) -> AuditPeer? {
        connections[id]?.auditPeer
    }

    /// An operator as audit records name them: certificate subject and serial, and `roles`, the
    /// roles the request was decided with (looked up once per request by the caller).
    package func auditOperator(_ id: ID, roles: [String]) -> AuditOperator? {
        guard let record = connections[id], case .operator(let name) = record.role else { return nil }
        return AuditOperator(
            peer: record.auditPeer, name: name, subject: record.certificate?.uri, serial: record.certificate?.serial,
            roles: roles)
    }

    /// The connections of operator `name` (one person may hold several).
    package func connections(ofOperator name: String) -> [ID] {
        connections.compactMap { $0.value.role == .operator(name) ? $0.key : nil }
    }

    /// An authenticated peer link of `replica`, either way dialed.
    package func peerLinks(of replica: String) -> [ID] {
        connections.compactMap { $0.value.role == .peer(replica) ? $0.key : nil }
    }

    /// Connections by kind, for the metrics.
    package var connectionKinds: [String: Int] {
        connections.values.reduce(into: [:]) { kinds, record in kinds[record.role.metricsKind, default: 0] += 1 }
    }
}
