// The payloads of the gateway's audit records (docs/AUDIT.md §10, §12): one struct per field
// group, its properties the record's fields in snake case (`EventFieldCoder`). Optional
// properties are fields a record of that type may lack.

/// The connection a record is about: the gateway's session id for it and the peer's address.
public struct AuditPeer: Codable, Sendable, Equatable {
    public var session: String
    public var source: String
    public init(session: String, source: String) {
        self.session = session
        self.source = source
    }
}

/// An operator as records name it: the connection, the certificate's name, subject and serial,
/// and the roles the request was decided with.
public struct AuditOperator: Codable, Sendable, Equatable {
    public var peer: AuditPeer
    public var name: String
    public var subject: String?
    public var serial: String?
    public var roles: [String]

    public init(peer: AuditPeer, name: String, subject: String?, serial: String?, roles: [String]) {
        self.peer = peer
        self.name = name
        self.subject = subject
        self.serial = serial
        self.roles = roles
    }

    enum CodingKeys: String, CodingKey {
        case name = "operator"
        case subject = "operator_subject"
        case serial = "operator_serial"
        case roles
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        peer = try AuditPeer(from: decoder)
        name = try container.decode(String.self, forKey: .name)
        subject = try container.decodeIfPresent(String.self, forKey: .subject)
        serial = try container.decodeIfPresent(String.self, forKey: .serial)
        roles = try container.decode([String].self, forKey: .roles)
    }

    public func encode(to encoder: any Encoder) throws {
        try peer.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(subject, forKey: .subject)
        try container.encodeIfPresent(serial, forKey: .serial)
        try container.encode(roles, forKey: .roles)
    }
}

public struct GatewayStart: Codable, Sendable, Equatable {
    public var listen: String
    public var version: String
    public var policyVersion: String
    public var caPin: String
    public init(listen: String, version: String, policyVersion: String, caPin: String) {
        self.listen = listen
        self.version = version
        self.policyVersion = policyVersion
        self.caPin = caPin
    }
}

public struct GatewayStop: Codable, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

public struct PolicyReload: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, AuditFieldValue { case ok, invalid }
    public var outcome: Outcome
    /// The version in force afterwards: the new one, or the old one that stays.
    public var policyVersion: String
    public var previousVersion: String?
    public var reason: String?
    public var file: String
    public init(
        outcome: Outcome, policyVersion: String, previousVersion: String? = nil, reason: String? = nil, file: String
    ) {
        self.outcome = outcome
        self.policyVersion = policyVersion
        self.previousVersion = previousVersion
        self.reason = reason
        self.file = file
    }
}

public struct NodeConnect: Codable, Sendable, Equatable {
    public var node: String
    public var nodeSerial: String?
    public var epoch: Int64
    public init(node: String, nodeSerial: String?, epoch: Int64) {
        self.node = node
        self.nodeSerial = nodeSerial
        self.epoch = epoch
    }
}

public struct NodeDisconnect: Codable, Sendable, Equatable {
    public var node: String
    public var reason: String
    /// The address of the newer session that replaced this one.
    public var replacedBy: String?
    public init(node: String, reason: String, replacedBy: String? = nil) {
        self.node = node
        self.reason = reason
        self.replacedBy = replacedBy
    }
}

public struct OperatorDisconnect: Codable, Sendable, Equatable {
    public var name: String
    public var reason: String
    enum CodingKeys: String, CodingKey {
        case name = "operator"
        case reason
    }
    public init(name: String, reason: String) {
        self.name = name
        self.reason = reason
    }
}

/// A link from another replica of the cluster, named in `peer_replica` (`replica` names the
/// replica that writes the log).
public struct PeerLink: Codable, Sendable, Equatable {
    public var peerReplica: String
    /// Only when the link ended.
    public var reason: String?
    public init(peerReplica: String, reason: String? = nil) {
        self.peerReplica = peerReplica
        self.reason = reason
    }
}

/// A verified certificate the gateway refused to admit: a node's or an operator's.
public struct ConnectionRefused: Codable, Sendable, Equatable {
    public var node: String?
    public var operatorName: String?
    public var reason: String
    enum CodingKeys: String, CodingKey {
        case node
        case operatorName = "operator"
        case reason
    }
    public init(node: String? = nil, operatorName: String? = nil, reason: String) {
        self.node = node
        self.operatorName = operatorName
        self.reason = reason
    }
}

/// `enroll` (with the token) and `reenroll` (with an expired certificate).
public struct Enrollment: Codable, Sendable, Equatable {
    public var token: String?
    public var node: String?
    public var outcome: String
    public init(token: String? = nil, node: String?, outcome: String = "ok") {
        self.token = token
        self.node = node
        self.outcome = outcome
    }
}

/// A certificate renewal; a node's record names the node, an operator's carries `AuditOperator`.
public struct Renewal: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, AuditFieldValue { case ok, refused }
    public var node: String?
    public var outcome: Outcome
    /// The new certificate's end, in seconds since 1970.
    public var notAfter: Int64?
    public var reason: String?
    public init(node: String? = nil, outcome: Outcome, notAfter: Int64? = nil, reason: String? = nil) {
        self.node = node
        self.outcome = outcome
        self.notAfter = notAfter
        self.reason = reason
    }
}

/// Refusals counted over an interval instead of recorded one by one: per `key` (the enrollment
/// source or the operator), how many of each kind.
public struct RefusalSummary: Codable, Sendable, Equatable {
    public var keys: Int64
    public var counts: [String: String]
    public var intervalMs: Int64
    public init(keys: Int64, counts: [String: String], intervalMs: Int64) {
        self.keys = keys
        self.counts = counts
        self.intervalMs = intervalMs
    }
}

/// The key of an `enroll_refused` summary.
public struct EnrollmentSource: Codable, Sendable, Equatable {
    public var source: String
    public init(source: String) { self.source = source }
}

/// The key of a `stream_summary`, and any record that names only an operator.
public struct OperatorName: Codable, Sendable, Equatable {
    public var name: String
    enum CodingKeys: String, CodingKey { case name = "operator" }
    public init(_ name: String) { self.name = name }
}

/// The record types of administration: one per kind of request.
public enum AdminRecordType: String, Codable, Sendable, CaseIterable {
    case tokenCreate = "token_create"
    case userAdd = "user_add"
    case revoke
    case nodeRemove = "node_remove"
    case nodeLabel = "node_label"
    case auditRead = "audit_read"
    case adminRead = "admin_read"
    /// A request refused for want of an admin role.
    case admin
}

public struct AdminAction: Codable, Sendable, Equatable {
    /// Who asked, in words: `operator alice`, `local admin (uid 0, pid 42)`.
    public var actor: String?
    public var action: String
    public var outcome: String
    public var reason: String?
    public var token: String?
    public var node: String?
    public init(
        actor: String? = nil, action: String, outcome: String, reason: String? = nil, token: String? = nil,
        node: String? = nil
    ) {
        self.actor = actor
        self.action = action
        self.outcome = outcome
        self.reason = reason
        self.token = token
        self.node = node
    }
}
