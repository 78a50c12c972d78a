import Multiplex
import TunnelTLS
import TunnelText

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A join token, as `tunnel token create` prints it: `tnl1.ID.SECRET.CAPIN`.
///
/// The gateway keeps only a hash of the secret. The CA pin (the SHA-256 of the gateway's node
/// CA certificate) lets the node check the gateway before it sends anything, so a man in the
/// middle learns nothing; the ID lets the gateway find the token without scanning.
public struct JoinToken: Equatable, Sendable, CustomStringConvertible {
    public static let prefix = "tnl1"
    /// 8 hex digits.
    public let id: String
    /// 32 hex digits: 128 random bits.
    public let secret: String
    public let caPin: [UInt8]

    public init(id: String, secret: String, caPin: [UInt8]) {
        self.id = id
        self.secret = secret
        self.caPin = caPin
    }

    /// A fresh token from the system's cryptographic random source.
    public static func generate(caPin: [UInt8]) -> JoinToken {
        var random = SystemRandomNumberGenerator()
        func hex(_ count: Int) -> String {
            Hex.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        return JoinToken(id: hex(4), secret: hex(16), caPin: caPin)
    }

    public var description: String { "\(Self.prefix).\(id).\(secret).\(Hex.encode(caPin))" }

    /// What the gateway stores instead of the secret.
    public var secretHash: String { Hex.encode(SHA256.hash(Array(secret.utf8))) }

    /// What a token looks like, for messages about a malformed one.
    public static let shape = "a join token looks like tnl1.ID.SECRET.CAHASH, as printed by `tunnel token create`"

    /// Parses a token, saying which part is wrong.
    public static func parse(_ text: String) throws(FleetFailure) -> JoinToken {
        let parts = text.trimmingASCIIWhitespace().split(separator: ".", omittingEmptySubsequences: false).map(
            String.init)
        guard parts.count == 4, parts[0] == prefix else { throw FleetFailure("this is not a join token: \(shape)") }
        func isHex(_ part: String, _ count: Int) -> Bool { part.count == count && Hex.decode(part) != nil }
        guard isHex(parts[1], 8), isHex(parts[2], 32) else {
            throw FleetFailure("the token's ID or secret is malformed: \(shape)")
        }
        guard isHex(parts[3], 64), let pin = Hex.decode(parts[3]) else {
            throw FleetFailure("the token's CA hash is not 64 hex digits (a SHA-256): \(shape)")
        }
        return JoinToken(id: parts[1].lowercased(), secret: parts[2].lowercased(), caPin: pin)
    }
}

/// A refusal or failure in fleet identity work, as one sentence for the person who must act.
public struct FleetFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    /// The gateway (or the token's CA pin) said no: retrying the same request cannot help,
    /// unlike a network failure.
    public let isFinal: Bool
    /// The application error code the refusal means (`TunnelErrorCode.revoked` for a revoked
    /// node), so the node logs and backs off by its meaning; nil for a plain refusal.
    public let code: ErrorCode?
    public init(_ message: String, isFinal: Bool = false, code: ErrorCode? = nil) {
        self.message = message
        self.isFinal = isFinal
        self.code = code
    }
    public var description: String { message }
}

/// What a client asks on an enrollment connection (ALPN `tunnel-enroll/1`), in the metadata of
/// the one stream it opens. The gateway answers with a `CertificateReply` as the stream's data.
public enum EnrollmentRequest: Codable, Equatable, Sendable {
    /// Only the gateway's time: for a node whose clock is wrong (no RTC, 1970 after a cold boot).
    case time
    /// A new node: its first certificate, for a key it just made, in exchange for a token.
    case redeem(RedeemRequest)
    /// A known node whose certificate expired while it was off: it presents the expired
    /// certificate in the handshake (proving its enrolled key) and asks for a new one.
    case reenroll(csr: String)
}

public struct RedeemRequest: Codable, Equatable, Sendable {
    public var tokenID: String
    public var secret: String
    /// The name the node asks for explicitly; the token may fix it or require a prefix.
    public var nodeName: String?
    /// The node's host name: its name when it asked for none and the token fixes none.
    public var hostName: String?
    public var labels: [String: String]
    /// PEM certificate signing request for the node's own key.
    public var csr: String

    public init(
        tokenID: String, secret: String, nodeName: String?, hostName: String?, labels: [String: String], csr: String
    ) {
        self.tokenID = tokenID
        self.secret = secret
        self.nodeName = nodeName
        self.hostName = hostName
        self.labels = labels
        self.csr = csr
    }
}

/// The gateway's answer to enrollment and renewal requests.
public struct CertificateReply: Codable, Equatable, Sendable {
    /// The gateway's clock (Unix seconds), so a node with a wrong clock can check at this time.
    public var gatewayTime: Int64
    /// PEM: the new certificate, then the CA that signed it.
    public var certificate: String?
    /// Why nothing was issued, for the person running the client.
    public var error: String?
    /// What the refusal means, as an application error code (`docs/TUNNEL.md`), when it has a
    /// meaning of its own (0x109 revoked); absent otherwise.
    public var errorCode: UInt32?

    public init(gatewayTime: Int64, certificate: String? = nil, error: String? = nil, errorCode: ErrorCode? = nil) {
        self.gatewayTime = gatewayTime
        self.certificate = certificate
        self.error = error
        self.errorCode = errorCode?.rawValue
    }

    /// The refusal, if this reply is one.
    public var refusal: FleetFailure? {
        error.map { FleetFailure($0, isFinal: true, code: errorCode.map(ErrorCode.init(rawValue:))) }
    }
}

/// What a node asks on its authenticated connection, in the metadata of a stream it opens.
public enum NodeRequest: Codable, Equatable, Sendable {
    /// What the node says about itself, once per connection (no reply).
    case announce(NodeAnnouncement)
    /// A fresh certificate for the same key and name, answered with a `CertificateReply`.
    case renew(csr: String)
}

/// Fleet administration: tokens, operators, nodes, policy. Allowed to operators whose role the
/// policy marks `admin: true`, and to root on the gateway host through the admin socket.
public enum AdminRequest: Codable, Equatable, Sendable {
    case createToken(TokenSpec)
    case listTokens
    /// Issues a certificate for an operator key made on the admin's machine.
    case addUser(name: String, roles: [String], lifetimeSeconds: Int64, csr: String)
    case listUsers
    case revokeUser(name: String)
    /// Every enrolled node, a page at a time as `OperatorRequest.listNodes` pages: by name after
    /// `after`, at most `limit` and never more than `NodeList.maximumPage`, answered with
    /// `AdminReply.nodes` and where the next page starts. A request without them (from a tunnel
    /// older than pages) gets the first page of the maximum size.
    case listNodes(after: String? = nil, limit: Int? = nil)
    case revokeNode(name: String)
    case removeNode(name: String)
    /// Sets (`set`) and removes (`remove`, keys) labels the policy matches on a node: with the
    /// token's, the only labels a node has; it cannot choose its own.
    case labelNode(name: String, set: [String: String], remove: [String])
    case showPolicy
    /// Records in the audit trail that `what` of the audit log is about to be read on the
    /// gateway host (`tunnel audit ls|show|export`); reads are audited too.
    case recordAuditRead(what: String)
}

/// What `tunnel token create` asks for.
public struct TokenSpec: Codable, Equatable, Sendable {
    /// The token enrolls exactly this node name.
    public var nodeName: String?
    /// The token enrolls names starting with this.
    public var namePrefix: String?
    public var lifetimeSeconds: Int64
    public var uses: Int
    /// Labels every node enrolled with this token gets: its only labels until an admin changes them.
    public var labels: [String: String]

    public init(nodeName: String?, namePrefix: String?, lifetimeSeconds: Int64, uses: Int, labels: [String: String]) {
        self.nodeName = nodeName
        self.namePrefix = namePrefix
        self.lifetimeSeconds = lifetimeSeconds
        self.uses = uses
        self.labels = labels
    }
}

/// Why the gateway did not carry out an admin request: what kind of refusal, and one sentence
/// for the person at the command line. On the wire, `error` (the sentence) and `errorCode`.
public struct AdminFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Codable, Sendable {
        /// The request is malformed or contradicts the policy (a bad name, an unknown role):
        /// correct the command.
        case invalid
        /// The request names a node or user the gateway does not know.
        case notFound = "not-found"
        /// The asker has no admin role in the policy.
        case notAllowed = "not-allowed"
        /// The gateway cannot do it now: its state database, its CA or its audit log failed.
        case unavailable
        /// A refusal without a code: from a gateway older than the codes.
        case refused
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// The gateway's answer to an `AdminRequest`: one case per kind of answer, or the refusal.
///
/// Its JSON is one flat object with the keys of the case (`message`, `token`, `tokens`,
/// `users`, `nodes`, `certificate` with `gatewayCA`, `policy`, or `error` with `errorCode`), as
/// it was when the reply was a struct of optionals, so older tunnels and newer gateways still
/// understand each other (docs/PROTOCOL.md).
public enum AdminReply: Equatable, Sendable {
    /// Done; the sentence says what was done.
    case done(String)
    /// A new join token (`tnl1.…`), and the sentence saying what it enrolls.
    case token(String, message: String)
    /// The join tokens, sorted by id; their JSON carries no secret hash.
    case tokens([TokenEntry])
    /// The operators, sorted by name.
    case users([UserEntry])
    /// A page of the nodes as the gateway sees them now, and the name the next page starts
    /// after (`AdminRequest.listNodes(after:)`); nil on the last page.
    case nodes([NodeStatus], next: String? = nil)
    /// An issued operator certificate (PEM, then the operator CA), the PEM of the CA that
    /// verifies the gateway, for the operator's bundle, and the sentence.
    case operatorCertificate(String, gatewayCA: String, message: String)
    /// The policy in force: its version and source.
    case policy(String)
    case refused(AdminFailure)

    /// The refusal, if this reply is one.
    public var failure: AdminFailure? {
        if case .refused(let failure) = self { failure } else { nil }
    }
}

extension AdminReply: Codable {
    private enum CodingKeys: String, CodingKey {
        case error, errorCode, message, token, tokens, users, nodes, next, certificate, gatewayCA, policy
    }

    public func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .done(let message):
            try values.encode(message, forKey: .message)
        case .token(let token, let message):
            try values.encode(token, forKey: .token)
            try values.encode(message, forKey: .message)
        case .tokens(let tokens): try values.encode(tokens, forKey: .tokens)
        case .users(let users): try values.encode(users, forKey: .users)
        case .nodes(let nodes, let next):
            try values.encode(nodes, forKey: .nodes)
            try values.encodeIfPresent(next, forKey: .next)
        case .operatorCertificate(let certificate, let gatewayCA, let message):
            try values.encode(certificate, forKey: .certificate)
            try values.encode(gatewayCA, forKey: .gatewayCA)
            try values.encode(message, forKey: .message)
        case .policy(let policy): try values.encode(policy, forKey: .policy)
        case .refused(let failure):
            try values.encode(failure.message, forKey: .error)
            try values.encode(failure.code, forKey: .errorCode)
        }
    }

    /// The first key present decides the case, in the order `encode` never mixes them.
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        func text(_ key: CodingKeys) throws -> String? { try values.decodeIfPresent(String.self, forKey: key) }
        let message = try text(.message)
        if let error = try text(.error) {
            // An unknown code from a newer gateway is still a refusal with its sentence.
            let code = (try? values.decodeIfPresent(AdminFailure.Code.self, forKey: .errorCode)) ?? nil
            self = .refused(AdminFailure(code ?? .refused, error))
        } else if let token = try text(.token) {
            self = .token(token, message: message ?? "")
        } else if let tokens = try values.decodeIfPresent([TokenEntry].self, forKey: .tokens) {
            self = .tokens(tokens)
        } else if let users = try values.decodeIfPresent([UserEntry].self, forKey: .users) {
            self = .users(users)
        } else if let nodes = try values.decodeIfPresent([NodeStatus].self, forKey: .nodes) {
            self = .nodes(nodes, next: try text(.next))
        } else if let certificate = try text(.certificate), let gatewayCA = try text(.gatewayCA) {
            self = .operatorCertificate(certificate, gatewayCA: gatewayCA, message: message ?? "")
        } else if let policy = try text(.policy) {
            self = .policy(policy)
        } else {
            self = .done(message ?? "")
        }
    }
}
