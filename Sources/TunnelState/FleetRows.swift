internal import Foundation
import TunnelWire

/// A result row of either database, read by column index while it is current.
protocol StoreRow {
    func int64(_ column: Int32) -> Int64
    func optionalInt64(_ column: Int32) -> Int64?
    /// The column as text; "" for NULL (use only on NOT NULL columns).
    func text(_ column: Int32) -> String
    func optionalText(_ column: Int32) -> String?
}

/// The columns of the fleet tables and the one mapping between rows and entries, shared by
/// every `FleetStore` so that SQLite and PostgreSQL hold exactly the same data.
///
/// Labels and roles are stored as JSON text with sorted keys, so equal values are equal text.
struct FleetRows {
    /// How errors name the database: "state database /var/lib/tunnel/fleet.db".
    let database: String
    private let encoder: JSONEncoder
    private let decoder = JSONDecoder()

    init(database: String) {
        self.database = database
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    static let nodeColumns = """
        name, labels, key_sha256, certificate_serial, certificate_not_after, enrolled_at, \
        enrolled_with_token, last_seen, last_address, last_disconnect_reason, revoked_at, revoked_by
        """

    static let tokenColumns = """
        id, secret_sha256, node_name, name_prefix, labels, created_at, expires_at, uses_allowed, uses_count, created_by
        """

    static let userColumns = """
        name, roles, created_at, created_by, certificate_serial, certificate_not_after, revoked_at, revoked_by
        """

    /// A node's values in the order of `nodeColumns`.
    func values(_ node: NodeEntry) throws(StoreError) -> [(any StoreValue)?] {
        [
            node.name, try json(node.labels, "the labels of node \(node.name)"), node.keySHA256,
            node.certificateSerial, node.certificateNotAfter, node.enrolledAt, node.enrolledWithToken,
            node.lastSeen, node.lastAddress, node.lastDisconnectReason, node.revokedAt, node.revokedBy,
        ]
    }

    /// A token's values in the order of `tokenColumns`.
    func values(_ token: TokenEntry) throws(StoreError) -> [(any StoreValue)?] {
        [
            token.id, token.secretSHA256, token.nodeName, token.namePrefix,
            try json(token.labels, "the labels of token \(token.id)"), token.createdAt, token.expiresAt,
            token.usesAllowed, token.usesCount, token.createdBy,
        ]
    }

    /// A user's values in the order of `userColumns`.
    func values(_ user: UserEntry) throws(StoreError) -> [(any StoreValue)?] {
        [
            user.name, try json(user.roles, "the roles of user \(user.name)"), user.createdAt, user.createdBy,
            user.certificateSerial, user.certificateNotAfter, user.revokedAt, user.revokedBy,
        ]
    }

    func node(_ row: some StoreRow) throws(StoreError) -> NodeEntry {
        let name = row.text(0)
        return NodeEntry(
            name: name,
            labels: try decodeJSON(row.text(1), "the labels of node \(name)"),
            keySHA256: row.optionalText(2),
            certificateSerial: row.optionalText(3),
            certificateNotAfter: row.optionalInt64(4),
            enrolledAt: row.optionalInt64(5),
            enrolledWithToken: row.optionalText(6),
            lastSeen: row.optionalInt64(7),
            lastAddress: row.optionalText(8),
            lastDisconnectReason: row.optionalText(9),
            revokedAt: row.optionalInt64(10),
            revokedBy: row.optionalText(11)
        )
    }

    func token(_ row: some StoreRow) throws(StoreError) -> TokenEntry {
        let id = row.text(0)
        return TokenEntry(
            id: id,
            secretSHA256: row.text(1),
            nodeName: row.optionalText(2),
            namePrefix: row.optionalText(3),
            labels: try decodeJSON(row.text(4), "the labels of token \(id)"),
            createdAt: row.int64(5),
            expiresAt: row.int64(6),
            usesAllowed: Int(row.int64(7)),
            usesCount: Int(row.int64(8)),
            createdBy: row.text(9)
        )
    }

    func user(_ row: some StoreRow) throws(StoreError) -> UserEntry {
        let name = row.text(0)
        return UserEntry(
            name: name,
            roles: try decodeJSON(row.text(1), "the roles of user \(name)"),
            createdAt: row.int64(2),
            createdBy: row.text(3),
            certificateSerial: row.optionalText(4),
            certificateNotAfter: row.optionalInt64(5),
            revokedAt: row.optionalInt64(6),
            revokedBy: row.optionalText(7)
        )
    }

    /// The error for inserting a token whose id is taken.
    func duplicateToken(_ id: String) -> StoreError {
        StoreError("\(database): token \(id) already exists; create the token with a new random id")
    }

    private func json(_ value: some Encodable, _ what: String) throws(StoreError) -> String {
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw StoreError(
                "\(database): could not encode \(what) as JSON (\(error)); this is likely a bug in tunnel, please report it"
            )
        }
    }

    private func decodeJSON<Value: Decodable>(_ text: String, _ what: String) throws(StoreError) -> Value {
        do {
            return try decoder.decode(Value.self, from: Data(text.utf8))
        } catch {
            throw StoreError("\(database): \(what) are not valid JSON (\(error)); restore a backup or correct the row")
        }
    }
}

/// A Swift value that either database can take as a statement parameter.
protocol StoreValue {}
extension String: StoreValue {}
extension Int64: StoreValue {}
extension Int: StoreValue {}

/// What the checks of `FleetStore.redeemToken` decide before a use is consumed.
enum RedemptionCheck {
    /// The attempt ends with this outcome; nothing changes.
    case refuse(TokenRedemption)
    /// One use of this token may be consumed (by a conditional UPDATE that repeats the checks).
    case consume(TokenEntry)

    /// Runs the checks in the order `FleetStore.redeemToken` documents. Both stores call this
    /// inside the transaction that consumes the use.
    /// - Parameter earlierNodeName: the node this key already redeemed the token for, if any.
    static func decide(
        token: TokenEntry?, secretSHA256: String, earlierNodeName: () throws(StoreError) -> String?, now: Int64
    ) throws(StoreError) -> RedemptionCheck {
        guard let token, constantTimeEquals(token.secretSHA256, secretSHA256) else { return .refuse(.unknown) }
        if let earlier = try earlierNodeName() {
            return .refuse(.alreadyRedeemed(nodeName: earlier))
        }
        guard token.expiresAt > now else { return .refuse(.expired(at: token.expiresAt)) }
        guard token.usesCount < token.usesAllowed else { return .refuse(.usedUp(uses: token.usesAllowed)) }
        return .consume(token)
    }
}
