import TunnelWire

/// Fleet state storage: nodes, join tokens and operators, with their revocations.
///
/// A protocol so that the embedded database (`SQLiteFleetStore`) can later be replaced by a
/// shared SQL database when several gateways serve one fleet. Implementations must make every
/// change durable before returning and must not rely on being the only writer: correctness of
/// `redeemToken` comes from the database, not from the caller's single thread.
///
/// Loop-confined (not Sendable): the gateway calls it from its one loop thread.
public protocol FleetStore: AnyObject {
    /// The node called `name`, or nil if there is none.
    func node(named name: String) throws(StoreError) -> NodeEntry?
    /// All nodes, sorted by name.
    func nodes() throws(StoreError) -> [NodeEntry]
    /// At most `limit` nodes named after `after` (all when nil), sorted by name byte by byte:
    /// one page of a list too long to read in one piece.
    func nodes(after: String?, limit: Int) throws(StoreError) -> [NodeEntry]
    /// Inserts `node`, or replaces the node of the same name.
    func saveNode(_ node: NodeEntry) throws(StoreError)
    /// Inserts or replaces each of `nodes` in one transaction, so a batch costs one sync (the
    /// gateway's group commit of `lastSeen` at connects and disconnects).
    func saveNodes(_ nodes: [NodeEntry]) throws(StoreError)
    /// Removes the node called `name`; false if there was none.
    func removeNode(named name: String) throws(StoreError) -> Bool

    /// Adds a new token; a token with the same id already existing is an error.
    func insertToken(_ token: TokenEntry) throws(StoreError)
    /// All tokens, sorted by id.
    func tokens() throws(StoreError) -> [TokenEntry]
    /// Removes the token with `id` and the record of who redeemed it; false if there was none.
    func removeToken(id: String) throws(StoreError) -> Bool
    /// Atomically uses one redemption of a token.
    ///
    /// Decides, in this order: unknown id → `.unknown`; secret hash mismatch → `.unknown`
    /// (compared in constant time); the same key already redeemed this token →
    /// `.alreadyRedeemed` with that redemption's node name (checked before expiry and uses, so a
    /// client that crashed after redeeming but before saving its certificate can retry);
    /// `expiresAt <= now` → `.expired`; `usesCount >= usesAllowed` → `.usedUp`; otherwise one
    /// use is consumed, the redemption (token, key, node name, time) is recorded, and the token
    /// after the increment is returned. The store does not check `nodeName` against the token's
    /// `nodeName`/`namePrefix`: that is the gateway's policy.
    /// - Parameters:
    ///   - secretSHA256: lowercase hex SHA-256 of the secret the client presented.
    ///   - keySHA256: hex SHA-256 of the client key's DER SubjectPublicKeyInfo.
    ///   - now: the current time, seconds since 1970; passed in so expiry is testable.
    func redeemToken(id: String, secretSHA256: String, keySHA256: String, nodeName: String, now: Int64)
        throws(StoreError) -> TokenRedemption

    /// The operator called `name`, or nil if there is none.
    func user(named name: String) throws(StoreError) -> UserEntry?
    /// All operators, sorted by name.
    func users() throws(StoreError) -> [UserEntry]
    /// Inserts `user`, or replaces the operator of the same name.
    func saveUser(_ user: UserEntry) throws(StoreError)

    // MARK: The cluster (docs/CLUSTER.md)

    /// Records that `replica` is alive and reached at `advertise` (`host:port`).
    func heartbeat(replica: String, advertise: String, now: Int64) throws(StoreError)
    /// Every replica that ever sent a heartbeat, sorted by name.
    func replicas() throws(StoreError) -> [ReplicaEntry]
    /// Records that `replica` holds a new session of `node` until `leaseUntil`, and returns the
    /// session's epoch: one more than the node's previous epoch on any replica, allocated by
    /// the store in one atomic statement, so epochs grow cluster-wide and the newest claim wins.
    /// A replica that held the node before learns at its next `renewLeases` that it lost it.
    func claimPresence(node: String, replica: String, leaseUntil: Int64) throws(StoreError) -> Int64
    /// Extends every lease `replica` still holds to `until`, and returns what it still holds
    /// (node → epoch). A session of this replica missing there, or under another epoch, was
    /// superseded by a newer one elsewhere and must be closed (fencing). Released leases stay released.
    func renewLeases(replica: String, until: Int64) throws(StoreError) -> [String: Int64]
    /// Ends `replica`'s lease on `node` if it still holds it under `epoch`; false if a newer
    /// session (or nothing) holds it. The row stays, so the node's epochs keep growing.
    func releasePresence(node: String, replica: String, epoch: Int64) throws(StoreError) -> Bool
    /// Ends every lease of `replica`: what a restarted replica does first, since the sessions of
    /// its previous run are gone. Returns how many it ended.
    func releaseAll(replica: String) throws(StoreError) -> Int
    /// Who holds `node` right now (lease after `now`), with the holder's advertised address.
    func presence(of node: String, now: Int64) throws(StoreError) -> Presence?
    /// Every live presence, sorted by node.
    func presences(now: Int64) throws(StoreError) -> [Presence]

    /// Appends a change every replica must apply; returns its sequence number. Concurrent
    /// appends commit in sequence order, so a reader that saw sequence n never misses a later
    /// commit with a smaller number.
    func appendChange(_ kind: FleetChange.Kind, subject: String, detail: String, replica: String, now: Int64)
        throws(StoreError) -> Int64
    /// Up to `limit` changes after `sequence`, oldest first.
    func changes(after sequence: Int64, limit: Int) throws(StoreError) -> [FleetChange]
    /// The newest change's sequence number (0 for none): where a starting replica begins reading.
    func latestChange() throws(StoreError) -> Int64
    /// Removes the changes recorded before `time`, which every running replica has read long
    /// ago; returns how many. The newest change always stays, so the feed's end is kept.
    func pruneChanges(recordedBefore time: Int64) throws(StoreError) -> Int
}

/// A failure of the state store, written for the person who has to fix it: one sentence
/// naming the database and what to do.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Compares two strings in time that depends only on their lengths, not on where they differ,
/// so that timing does not reveal how much of a guessed secret hash was right. The one such
/// compare: `package`, so the gateway's `FleetAuthority` uses it too.
package func constantTimeEquals(_ left: String, _ right: String) -> Bool {
    let left = Array(left.utf8), right = Array(right.utf8)
    var difference: UInt8 = left.count == right.count ? 0 : 1
    for index in 0..<max(left.count, right.count) {
        difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
    }
    return difference == 0
}

/// The outcome of one attempt to redeem a join token (`FleetStore.redeemToken`).
public enum TokenRedemption: Equatable, Sendable {
    /// One use was consumed; the token as it is after the increment.
    case redeemed(TokenEntry)
    /// This key already redeemed the token, for the node named here: a client that crashed
    /// after redeeming but before saving its certificate may enroll again without a new use.
    case alreadyRedeemed(nodeName: String)
    /// No token with this id and secret. Deliberately the same for a wrong secret, so a
    /// guesser learns nothing about which ids exist.
    case unknown
    /// The token expired at this time (seconds since 1970).
    case expired(at: Int64)
    /// Every allowed use has been consumed; `uses` is how many were allowed.
    case usedUp(uses: Int)
}
