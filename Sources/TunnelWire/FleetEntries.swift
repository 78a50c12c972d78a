/// A node the gateway knows: enrolled with a key, or only seen connecting.
///
/// Times are seconds since 1970 (UTC). Codable so admin replies can carry it as JSON.
public struct NodeEntry: Sendable, Equatable, Codable {
    public var name: String
    public var labels: [String: String]
    /// Hex SHA-256 of the node key's DER SubjectPublicKeyInfo; nil for nodes seen but never enrolled.
    public var keySHA256: String?
    /// Serial of the node's current certificate, as lowercase hex.
    public var certificateSerial: String?
    public var certificateNotAfter: Int64?
    public var enrolledAt: Int64?
    /// Id of the join token the node enrolled with.
    public var enrolledWithToken: String?
    public var lastSeen: Int64?
    public var lastAddress: String?
    public var lastDisconnectReason: String?
    public var revokedAt: Int64?
    /// The operator who revoked the node.
    public var revokedBy: String?

    public init(
        name: String,
        labels: [String: String] = [:],
        keySHA256: String? = nil,
        certificateSerial: String? = nil,
        certificateNotAfter: Int64? = nil,
        enrolledAt: Int64? = nil,
        enrolledWithToken: String? = nil,
        lastSeen: Int64? = nil,
        lastAddress: String? = nil,
        lastDisconnectReason: String? = nil,
        revokedAt: Int64? = nil,
        revokedBy: String? = nil
    ) {
        self.name = name
        self.labels = labels
        self.keySHA256 = keySHA256
        self.certificateSerial = certificateSerial
        self.certificateNotAfter = certificateNotAfter
        self.enrolledAt = enrolledAt
        self.enrolledWithToken = enrolledWithToken
        self.lastSeen = lastSeen
        self.lastAddress = lastAddress
        self.lastDisconnectReason = lastDisconnectReason
        self.revokedAt = revokedAt
        self.revokedBy = revokedBy
    }
}

/// A join token: lets a node enroll (get its first certificate) a limited number of times.
///
/// Only the SHA-256 of the secret is stored, so a copy of the database does not let anyone
/// enroll. Either `nodeName` fixes the enrolling node's name or `namePrefix` constrains it;
/// the gateway enforces both, the store only records them.
///
/// Its JSON form (a row of `tunnel token ls`) leaves the secret's hash out: it never leaves
/// the gateway, and a token decoded from JSON has an empty `secretSHA256`.
public struct TokenEntry: Sendable, Equatable, Codable {
    public var id: String
    /// Lowercase hex SHA-256 of the token secret.
    public var secretSHA256: String
    public var nodeName: String?
    public var namePrefix: String?
    /// Labels given to every node enrolled with this token.
    public var labels: [String: String]
    public var createdAt: Int64
    public var expiresAt: Int64
    public var usesAllowed: Int
    public var usesCount: Int
    /// The operator who created the token.
    public var createdBy: String

    public init(
        id: String,
        secretSHA256: String,
        nodeName: String? = nil,
        namePrefix: String? = nil,
        labels: [String: String] = [:],
        createdAt: Int64,
        expiresAt: Int64,
        usesAllowed: Int,
        usesCount: Int = 0,
        createdBy: String
    ) {
        self.id = id
        self.secretSHA256 = secretSHA256
        self.nodeName = nodeName
        self.namePrefix = namePrefix
        self.labels = labels
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usesAllowed = usesAllowed
        self.usesCount = usesCount
        self.createdBy = createdBy
    }

    private enum CodingKeys: String, CodingKey {
        case id, nodeName, namePrefix, labels, createdAt, expiresAt, usesAllowed, usesCount, createdBy
    }

    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try values.decode(String.self, forKey: .id), secretSHA256: "",
            nodeName: try values.decodeIfPresent(String.self, forKey: .nodeName),
            namePrefix: try values.decodeIfPresent(String.self, forKey: .namePrefix),
            labels: try values.decode([String: String].self, forKey: .labels),
            createdAt: try values.decode(Int64.self, forKey: .createdAt),
            expiresAt: try values.decode(Int64.self, forKey: .expiresAt),
            usesAllowed: try values.decode(Int.self, forKey: .usesAllowed),
            usesCount: try values.decode(Int.self, forKey: .usesCount),
            createdBy: try values.decode(String.self, forKey: .createdBy))
    }
}

/// An operator (a person or automation with an operator certificate) and their roles.
public struct UserEntry: Sendable, Equatable, Codable {
    public var name: String
    /// Role names, in the order the operator gave them.
    public var roles: [String]
    public var createdAt: Int64
    /// The operator who created this one.
    public var createdBy: String
    /// Serial of the user's current certificate, as lowercase hex.
    public var certificateSerial: String?
    public var certificateNotAfter: Int64?
    public var revokedAt: Int64?
    public var revokedBy: String?

    public init(
        name: String,
        roles: [String],
        createdAt: Int64,
        createdBy: String,
        certificateSerial: String? = nil,
        certificateNotAfter: Int64? = nil,
        revokedAt: Int64? = nil,
        revokedBy: String? = nil
    ) {
        self.name = name
        self.roles = roles
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.certificateSerial = certificateSerial
        self.certificateNotAfter = certificateNotAfter
        self.revokedAt = revokedAt
        self.revokedBy = revokedBy
    }
}
