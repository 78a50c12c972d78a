/// A database connection as the cluster queries need it: both stores' connections are one.
protocol SQLSession {
    associatedtype ResultRow: StoreRow
    func query<Result>(
        _ sql: String, _ values: [(any StoreValue)?], operation: String, row: (ResultRow) throws(StoreError) -> Result
    ) throws(StoreError) -> [Result]
    @discardableResult
    func execute(_ sql: String, _ values: [(any StoreValue)?], operation: String) throws(StoreError) -> Int
    /// Runs `body` in one transaction holding the write lock for what it changes.
    func writeTransaction<Result>(operation: String, _ body: () throws(StoreError) -> Result) throws(StoreError)
        -> Result
    /// `sql`, written with `?1`-style parameters, in this database's own parameter syntax.
    func dialect(_ sql: String) -> String
    /// A `FleetSchema` script in this database's own column types.
    func schema(_ sql: String) -> String
    /// A statement that makes concurrent appends to the change feed commit in sequence order,
    /// run first in the appending transaction; nil where transactions already serialise.
    var changeFeedLock: String? { get }
    /// The collation that orders text byte by byte, as Swift's `<` on ASCII names does.
    var bytewiseCollation: String { get }
    /// What follows a SELECT in a write transaction to lock the rows it read until commit.
    var rowLock: String { get }
}

/// The replica, presence and change-feed statements, written once for both stores (the SQL is
/// the common subset of SQLite and PostgreSQL: upserts with RETURNING). What each does and
/// why is documented on `FleetStore`.
struct ClusterQueries<Session: SQLSession> {
    let session: Session

    static var presenceColumns: String {
        "p.node, p.replica, COALESCE(r.advertise, ''), p.epoch, p.lease_until"
    }

    func heartbeat(replica: String, advertise: String, now: Int64) throws(StoreError) {
        try session.execute(
            session.dialect(
                """
                INSERT INTO replicas (name, advertise, heartbeat_at) VALUES (?1, ?2, ?3)
                ON CONFLICT (name) DO UPDATE SET advertise = excluded.advertise, heartbeat_at = excluded.heartbeat_at
                """), [replica, advertise, now], operation: "record the heartbeat of replica \(replica)")
    }

    func replicas() throws(StoreError) -> [ReplicaEntry] {
        try session.query("SELECT name, advertise, heartbeat_at FROM replicas", [], operation: "list replicas") { row in
            ReplicaEntry(name: row.text(0), advertise: row.text(1), heartbeatAt: row.int64(2))
        }.sorted { $0.name < $1.name }
    }

    func claimPresence(node: String, replica: String, leaseUntil: Int64) throws(StoreError) -> Int64 {
        // One statement: the row lock of the upsert orders racing claims, and each gets the
        // epoch after the one before it, whichever replica made that one.
        let epochs = try session.query(
            session.dialect(
                """
                INSERT INTO presence (node, replica, epoch, lease_until) VALUES (?1, ?2, 1, ?3)
                ON CONFLICT (node) DO UPDATE SET replica = excluded.replica, epoch = presence.epoch + 1, lease_until = excluded.lease_until
                RETURNING epoch
                """), [node, replica, leaseUntil], operation: "record the presence of node \(node)"
        ) { $0.int64(0) }
        guard let epoch = epochs.first else {
            throw StoreError(
                "the presence of node \(node) was not recorded (the database returned no epoch); this is likely a bug in tunnel, please report it"
            )
        }
        return epoch
    }

    func renewLeases(replica: String, until: Int64) throws(StoreError) -> [String: Int64] {
        let rows = try session.query(
            session.dialect(
                """
                UPDATE presence SET lease_until = ?2 WHERE replica = ?1 AND lease_until > 0 RETURNING node, epoch
                """), [replica, until], operation: "renew the leases of replica \(replica)"
        ) { ($0.text(0), $0.int64(1)) }
        return Dictionary(rows) { first, _ in first }
    }

    func releasePresence(node: String, replica: String, epoch: Int64) throws(StoreError) -> Bool {
        try session.execute(
            session.dialect(
                """
                UPDATE presence SET lease_until = 0 WHERE node = ?1 AND replica = ?2 AND epoch = ?3
                """), [node, replica, epoch], operation: "release the presence of node \(node)") > 0
    }

    func releaseAll(replica: String) throws(StoreError) -> Int {
        try session.execute(
            session.dialect("UPDATE presence SET lease_until = 0 WHERE replica = ?1 AND lease_until > 0"), [replica],
            operation: "release the presences left by replica \(replica)")
    }

    func presence(of node: String, now: Int64) throws(StoreError) -> Presence? {
        try session.query(
            session.dialect(
                """
                SELECT \(Self.presenceColumns) FROM presence p LEFT JOIN replicas r ON r.name = p.replica
                WHERE p.node = ?1 AND p.lease_until > ?2
                """), [node, now], operation: "read the presence of node \(node)", row: presence
        ).first
    }

    func presences(now: Int64) throws(StoreError) -> [Presence] {
        try session.query(
            session.dialect(
                """
                SELECT \(Self.presenceColumns) FROM presence p LEFT JOIN replicas r ON r.name = p.replica
                WHERE p.lease_until > ?1
                """), [now], operation: "list live presences", row: presence
        ).sorted { $0.node < $1.node }
    }

    func appendChange(_ kind: FleetChange.Kind, subject: String, detail: String, replica: String, now: Int64)
        throws(StoreError) -> Int64
    {
        let operation = "record a \(kind.rawValue) change of \(subject)"
        return try session.writeTransaction(operation: operation) { () throws(StoreError) -> Int64 in
            if let lock = session.changeFeedLock {
                _ = try session.query(lock, [], operation: operation) { _ in () }
            }
            let sequences = try session.query(
                session.dialect(
                    """
                    INSERT INTO fleet_changes (kind, subject, detail, replica, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING sequence
                    """), [kind.rawValue, subject, detail, replica, now], operation: operation
            ) { $0.int64(0) }
            return sequences.first ?? 0
        }
    }

    func changes(after sequence: Int64, limit: Int) throws(StoreError) -> [FleetChange] {
        try session.query(
            session.dialect(
                """
                SELECT sequence, kind, subject, detail, replica, recorded_at FROM fleet_changes WHERE sequence > ?1 ORDER BY sequence LIMIT ?2
                """), [sequence, limit], operation: "read the change feed"
        ) { row throws(StoreError) in
            let kind = row.text(1)
            guard let known = FleetChange.Kind(rawValue: kind) else {
                throw StoreError(
                    "the change feed holds change \(row.int64(0)) of the unknown kind \"\(kind)\"; a newer tunnel wrote it: upgrade this replica"
                )
            }
            return FleetChange(
                sequence: row.int64(0), kind: known, subject: row.text(2), detail: row.text(3), replica: row.text(4),
                recordedAt: row.int64(5))
        }
    }

    func latestChange() throws(StoreError) -> Int64 {
        try session.query("SELECT COALESCE(MAX(sequence), 0) FROM fleet_changes", [], operation: "read the change feed")
        { $0.int64(0) }.first ?? 0
    }

    func pruneChanges(recordedBefore time: Int64) throws(StoreError) -> Int {
        try session.execute(
            session.dialect(
                """
                DELETE FROM fleet_changes WHERE recorded_at < ?1 AND sequence < (SELECT MAX(sequence) FROM fleet_changes)
                """), [time], operation: "prune the change feed")
    }

    private func presence(_ row: Session.ResultRow) -> Presence {
        Presence(
            node: row.text(0), replica: row.text(1), advertise: row.text(2), epoch: row.int64(3),
            leaseUntil: row.int64(4))
    }
}

/// A store whose cluster calls are the shared `ClusterQueries` on its own connection.
protocol ClusterBackedStore: FleetStore {
    associatedtype Session: SQLSession
    var cluster: ClusterQueries<Session> { get }
}

extension ClusterBackedStore {
    public func heartbeat(replica: String, advertise: String, now: Int64) throws(StoreError) {
        try cluster.heartbeat(replica: replica, advertise: advertise, now: now)
    }
    public func replicas() throws(StoreError) -> [ReplicaEntry] { try cluster.replicas() }
    public func claimPresence(node: String, replica: String, leaseUntil: Int64) throws(StoreError) -> Int64 {
        try cluster.claimPresence(node: node, replica: replica, leaseUntil: leaseUntil)
    }
    public func renewLeases(replica: String, until: Int64) throws(StoreError) -> [String: Int64] {
        try cluster.renewLeases(replica: replica, until: until)
    }
    public func releasePresence(node: String, replica: String, epoch: Int64) throws(StoreError) -> Bool {
        try cluster.releasePresence(node: node, replica: replica, epoch: epoch)
    }
    public func releaseAll(replica: String) throws(StoreError) -> Int { try cluster.releaseAll(replica: replica) }
    public func presence(of node: String, now: Int64) throws(StoreError) -> Presence? {
        try cluster.presence(of: node, now: now)
    }
    public func presences(now: Int64) throws(StoreError) -> [Presence] { try cluster.presences(now: now) }
    public func appendChange(_ kind: FleetChange.Kind, subject: String, detail: String, replica: String, now: Int64)
        throws(StoreError) -> Int64
    {
        try cluster.appendChange(kind, subject: subject, detail: detail, replica: replica, now: now)
    }
    public func changes(after sequence: Int64, limit: Int) throws(StoreError) -> [FleetChange] {
        try cluster.changes(after: sequence, limit: limit)
    }
    public func latestChange() throws(StoreError) -> Int64 { try cluster.latestChange() }
    public func pruneChanges(recordedBefore time: Int64) throws(StoreError) -> Int {
        try cluster.pruneChanges(recordedBefore: time)
    }
}
