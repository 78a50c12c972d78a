import TunnelAudit

/// What a verified handshake showed of the peer's certificate, copied out of the TLS layer so
/// the core needs none of it: the CA that verified the chain, the identity in its SAN
/// (`tunnel://ROLE/NAME`), its serial and when it expires.
package struct PeerCertificate: Equatable, Sendable {
    /// The CA that verified the chain: nodes (and replicas) are signed by one, operators by the other.
    package enum Issuer: Equatable, Sendable {
        case node
        case `operator`
        /// Any other CA: it verifies no role at the gateway.
        case other
    }

    /// The role a certificate's identity names.
    package enum Role: String, Equatable, Sendable {
        case node
        case `operator`
        /// A gateway replica's peer-link certificate.
        case gateway
    }

    package var issuer: Issuer
    package var role: Role
    package var name: String
    /// The identity as a URI, for audit records.
    package var uri: String?
    package var serial: String?
    /// Unix seconds.
    package var notAfter: Int64

    package init(issuer: Issuer, role: Role, name: String, uri: String?, serial: String?, notAfter: Int64) {
        self.issuer = issuer
        self.role = role
        self.name = name
        self.uri = uri
        self.serial = serial
        self.notAfter = notAfter
    }
}

/// What a connection is to the gateway, as far as it knows so far. It changes only forward:
/// handshaking, then one of the authenticated kinds (or enrolling), and a node session a newer
/// one took over is `replaced` until it has closed.
package enum ConnectionRole: Equatable, Sendable {
    /// The TLS handshake is under way (or an outbound peer link's): nothing it asks is served.
    case handshaking
    /// A node with a join token or an expired certificate, allowed one request.
    case enrolling
    case node(String)
    case `operator`(String)
    /// Another replica's peer link.
    case peer(String)
    /// A node session a newer one of the same node replaced: closing, and no longer the node's.
    case replaced(String)

    /// The kind as the metrics count connections.
    package var metricsKind: String {
        switch self {
        case .handshaking, .replaced: "handshake"
        case .enrolling: "enrolling"
        case .node: "node"
        case .operator: "operator"
        case .peer: "peer"
        }
    }
}

/// Everything the gateway keeps about one connection, in one place: what it is, how its audit
/// records name it, and when its certificate runs out.
package struct ConnectionRecord: Equatable, Sendable {
    /// A random id per connection, so the audit records of one session can be found together.
    package let sessionID: String
    package let remoteAddress: String
    package internal(set) var role: ConnectionRole = .handshaking
    /// The verified certificate, once authenticated.
    package internal(set) var certificate: PeerCertificate?
    /// Unix seconds at which the session is closed unless its certificate was renewed on it.
    package internal(set) var certificateDeadline: Int64?

    package init(sessionID: String, remoteAddress: String) {
        self.sessionID = sessionID
        self.remoteAddress = remoteAddress
    }

    /// The audit fields naming this connection's peer.
    package var auditPeer: AuditPeer { AuditPeer(session: sessionID, source: remoteAddress) }
}
