import Multiplex

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What rides in stream metadata between operators, the gateway and nodes (`docs/TUNNEL.md` §3).
/// JSON, so a stranger can read it in a packet capture of the plaintext and so fields can be
/// added without a new protocol version.
public enum TunnelProtocol {
    /// ALPN protocol of an edge node's connection to the gateway.
    public static let nodeALPN = "tunnel-node/1"
    /// ALPN protocol of an operator's connection to the gateway.
    public static let operatorALPN = "tunnel-operator/1"
    /// ALPN protocol of a node enrolling (token, expired certificate, or only asking the time);
    /// offered alone, it lets the client present no certificate or an expired one.
    public static let enrollALPN = "tunnel-enroll/1"
    /// ALPN protocol of a peer link between two gateway replicas: only a gateway-peer identity
    /// may use it, and a gateway-peer identity may use nothing else.
    public static let peerALPN = "tunnel-peer/1"
    /// The node's built-in recorded shell; the gateway records every session of it.
    public static let shellService = "shell"
    /// The node's built-in device logs.
    public static let logsService = "logs"
    /// The node's Kubernetes API as the operator, by impersonation (`docs/KUBERNETES.md`).
    public static let kubernetesService = "kubernetes"
    /// The version string nodes report in their announcement.
    public static let softwareVersion = "0.1.0"

    /// A message as JSON with sorted keys. Throws rather than sending an empty message: the
    /// peer would read nothing as a request it cannot parse, and the cause would be lost.
    public static func encode<Value: Encodable>(_ value: Value) throws(WireEncodingError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw WireEncodingError(message: "\(Value.self)", reason: "\(error)")
        }
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) -> Value? {
        try? JSONDecoder().decode(type, from: Data(bytes))
    }
}

/// What an operator asks the gateway for, in the metadata of the stream it opens.
public enum OperatorRequest: Codable, Equatable, Sendable {
    /// Splice this stream to `service` on `node`; `parameters` go to the service (a log
    /// source and its options, say) and into the audit record.
    case connect(node: String, service: String, parameters: [String: String]? = nil)
    /// Reply with one page of the known nodes (`NodeList`) as JSON data, then finish: the nodes
    /// named after `after` (by byte order), at most `limit` of them and never more than
    /// `NodeList.maximumPage`. A request without a limit (from a tunnel older than pages) gets
    /// one page of the maximum size. With `pages`, the reply carries up to that many pages in a
    /// row (never more than `NodeList.maximumPagesPerReply`), each a JSON document ended by a
    /// newline, so a long list costs one request instead of one per page; the last page's `next`
    /// is where a following request starts. A gateway older than `pages` ignores it and sends
    /// its one page, which a reader of lines takes the same way.
    case listNodes(after: String? = nil, limit: Int? = nil, pages: Int? = nil)
    /// A fresh certificate for the operator's key, answered with a `CertificateReply`.
    case renew(csr: String)
    /// Fleet administration, answered with an `AdminReply`; needs an admin role.
    case admin(AdminRequest)
    /// Reading the audit directory, answered with an `AuditReadReply`; needs a role with `audit: true`.
    case auditRead(AuditReadRequest)
}

/// Why the gateway refused an operator's stream, sent as the ACCEPT metadata right before the
/// RESET, because a RESET carries only a code.
public struct StreamRefusal: Codable, Equatable, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}

/// What the gateway asks a node for: one of the node's own configured services, by name, with
/// the operator's parameters for the node's built-in services (`logs`, `shell`).
public struct ServiceRequest: Codable, Equatable, Sendable {
    public var service: String
    public var parameters: [String: String]?
    /// For the `kubernetes` service only: who the node's API server is asked to treat the
    /// operator as. The gateway fills it from the operator's certificate and the policy; the
    /// node trusts it because only the gateway opens streams on the node's session.
    public var kubernetes: KubernetesIdentity?

    public init(service: String, parameters: [String: String]? = nil, kubernetes: KubernetesIdentity? = nil) {
        self.service = service
        self.parameters = parameters
        self.kubernetes = kubernetes
    }
}

/// The identity the gateway asserts for an operator's `kubernetes` stream: sent by the node as
/// `Impersonate-User` and one `Impersonate-Group` per group.
public struct KubernetesIdentity: Codable, Equatable, Sendable {
    /// The operator's name from its certificate.
    public var user: String
    /// The groups the policy maps the operator's roles to on this node; never empty.
    public var groups: [String]

    public init(user: String, groups: [String]) {
        self.user = user
        self.groups = groups
    }
}

/// What a node says about itself once it is connected (`NodeRequest.announce`). Descriptive
/// only: the node's name comes from its certificate, and the labels the policy uses are the
/// ones recorded at enrollment.
public struct NodeAnnouncement: Codable, Equatable, Sendable {
    public var labels: [String: String]
    public var services: [String]
    public var version: String
    /// The kernel's boot id: a different one than last time means the node rebooted.
    public var bootID: String
    public var uptimeSeconds: Double

    public init(labels: [String: String], services: [String], version: String, bootID: String, uptimeSeconds: Double) {
        self.labels = labels
        self.services = services
        self.version = version
        self.bootID = bootID
        self.uptimeSeconds = uptimeSeconds
    }
}

/// The reply to `OperatorRequest.listNodes`: the nodes, and what the operator should know about
/// the gateway itself (its audit log failing, say).
public struct NodeList: Codable, Equatable, Sendable {
    /// The most nodes one reply carries, whatever the request asks: a reply's encoding is one
    /// turn of the gateway's loop, and this bounds it.
    public static let maximumPage = 1_000
    /// The most pages one request's reply carries (`OperatorRequest.listNodes(pages:)`): a
    /// 10,000-node fleet in one request. Each page is encoded in a loop turn of its own.
    public static let maximumPagesPerReply = 10

    public var nodes: [NodeStatus]
    public var warnings: [String]
    /// The gateway's clock (Unix seconds) when it answered, for `tunnel doctor`'s skew check;
    /// nil from gateways older than the field.
    public var gatewayTime: Int64?
    /// Where the next page starts (`OperatorRequest.listNodes(after:)`); nil on the last page
    /// and from gateways older than pages, whose one reply holds every node.
    public var next: String?
    public init(nodes: [NodeStatus], warnings: [String], gatewayTime: Int64? = nil, next: String? = nil) {
        self.nodes = nodes
        self.warnings = warnings
        self.gatewayTime = gatewayTime
        self.next = next
    }
}

/// One row of `tunnel nodes`.
public struct NodeStatus: Codable, Equatable, Sendable {
    public var name: String
    public var online: Bool
    /// In a cluster, the replica holding the node's session; nil on a lone gateway or offline.
    public var replica: String?
    public var labels: [String: String]
    public var services: [String]
    public var remoteAddress: String
    /// Unix seconds.
    public var connectedSince: Double?
    /// Seconds since the last answered keepalive.
    public var lastKeepaliveSecondsAgo: Double?
    public var version: String
    public var previousSessionEnded: String?
    /// Unix seconds; nil for a node that never enrolled.
    public var certificateNotAfter: Int64?
    /// Unix seconds of the last connect or disconnect.
    public var lastSeen: Int64?
    public var revokedAt: Int64?

    public init(
        name: String, online: Bool, replica: String? = nil, labels: [String: String], services: [String],
        remoteAddress: String,
        connectedSince: Double?, lastKeepaliveSecondsAgo: Double?, version: String, previousSessionEnded: String?,
        certificateNotAfter: Int64? = nil, lastSeen: Int64? = nil, revokedAt: Int64? = nil
    ) {
        self.name = name
        self.online = online
        self.replica = replica
        self.labels = labels
        self.services = services
        self.remoteAddress = remoteAddress
        self.connectedSince = connectedSince
        self.lastKeepaliveSecondsAgo = lastKeepaliveSecondsAgo
        self.version = version
        self.previousSessionEnded = previousSessionEnded
        self.certificateNotAfter = certificateNotAfter
        self.lastSeen = lastSeen
        self.revokedAt = revokedAt
    }
}

/// RESET and GOAWAY codes the tunnel adds to the protocol's own (`docs/PROTOCOL.md` §8).
public enum TunnelErrorCode {
    public static let unknownNode = ErrorCode(rawValue: 0x101)
    public static let unknownService = ErrorCode(rawValue: 0x102)
    public static let serviceUnreachable = ErrorCode(rawValue: 0x103)
    public static let badRequest = ErrorCode(rawValue: 0x104)
    public static let wrongRole = ErrorCode(rawValue: 0x105)
    public static let replaced = ErrorCode(rawValue: 0x106)
    public static let nodeDisconnected = ErrorCode(rawValue: 0x107)
    /// The policy does not allow this operator this service on this node.
    public static let denied = ErrorCode(rawValue: 0x108)
    /// The node's or operator's identity was revoked, or its certificate expired unrenewed.
    public static let revoked = ErrorCode(rawValue: 0x109)
    /// The gateway cannot write its audit log, so it admits no new streams.
    public static let auditUnavailable = ErrorCode(rawValue: 0x10A)
    /// The node is connected but has no stream left for this operator (its capacity, the slots
    /// kept for admins, or the operator's own budget on it).
    public static let nodeBusy = ErrorCode(rawValue: 0x10B)

    /// What an operator is told when a node has no stream left for them.
    public static func busy(node: String, open: Int) -> String {
        "\(node) is busy (\(open) streams open); retry when some have closed"
    }

    /// The name of a tunnel code as `docs/TUNNEL.md` §4 lists it, else the protocol's own name.
    public static func name(_ code: ErrorCode) -> String {
        switch code {
        case unknownNode: "unknown-node"
        case unknownService: "unknown-service"
        case serviceUnreachable: "service-unreachable"
        case badRequest: "bad-request"
        case wrongRole: "wrong-role"
        case replaced: "replaced"
        case nodeDisconnected: "node-disconnected"
        case denied: "denied"
        case revoked: "revoked"
        case auditUnavailable: "audit-unavailable"
        case nodeBusy: "node-busy"
        default: code.description
        }
    }

    /// A failure for a log line: the code's name, then the sentence.
    public static func describe(_ failure: Failure) -> String {
        "\(name(failure.code)): \(failure.reason)"
    }

    /// A sentence for an operator whose stream to `service` on `node` ended with `failure`. For
    /// the codes that end a whole session (revoked, replaced, wrong-role) the gateway's own
    /// sentence follows, since it says what happened (who revoked, from where).
    public static func explain(_ failure: Failure, node: String, service: String) -> String {
        let detail =
            failure.reason.hasPrefix(goingAwayPrefix)
            ? String(failure.reason.dropFirst(goingAwayPrefix.count)) : failure.reason
        return switch failure.code {
        case unknownNode: "node \(node) is not connected to the gateway; `tunnel nodes` lists the connected ones"
        case unknownService: "node \(node) offers no service \"\(service)\"; `tunnel nodes` lists each node's services"
        case serviceUnreachable: "node \(node) could not reach its \(service) service (is it running on the node?)"
        case badRequest: "the gateway did not understand the request (is this tunnel older than the gateway?)"
        case nodeDisconnected: "node \(node) disconnected"
        case nodeBusy: "node \(node) is busy; retry when some of its streams have closed"
        case denied: "the policy does not allow you \(service) on \(node)"
        case revoked: "the gateway revoked your access or no longer accepts your certificate (\(detail)); ask an admin"
        case replaced: "the session was replaced by a newer one (\(detail))"
        case wrongRole: "the gateway refused this certificate for this kind of connection (\(detail))"
        case auditUnavailable:
            "the gateway cannot write its audit log, so it opens no new streams; tell the gateway's admin"
        case .refusedStream: "the gateway or node refused the stream (going away or too many streams); retry"
        default: "the stream to \(service) on \(node) was reset (\(name(failure.code)))"
        }
    }

    /// How `Session` words a GOAWAY's message in the failure it reports.
    private static let goingAwayPrefix = "peer is going away: "
}

/// A message that could not be encoded (JSON has no NaN or infinity, say): a bug in what was
/// about to be sent, reported where it happens instead of as an empty message.
public struct WireEncodingError: Error, Sendable, CustomStringConvertible {
    /// The message type.
    public let message: String
    public let reason: String

    public var description: String { "cannot encode a \(message): \(reason)" }
}
