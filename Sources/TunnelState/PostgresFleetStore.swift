/// The fleet state in a PostgreSQL database shared by the replicas of a gateway cluster.
///
/// The same tables, columns and schema versions as `SQLiteFleetStore` (`FleetRows` maps both),
/// in PostgreSQL's dialect. Every call is one statement or one transaction on one connection,
/// committed before it returns; a replica's crash loses nothing it has answered. Token
/// redemption locks the token row and consumes with a conditional UPDATE, so exactly one of
/// any number of replicas racing on a single-use token wins.
///
/// Synchronous: each call blocks the loop for one round trip to the server (see
/// `PostgresConnection` for the bounds, docs/TUNNEL.md for the cost).
public final class PostgresFleetStore: FleetStore, ClusterBackedStore {
    let connection: PostgresConnection
    private let rows: FleetRows
    let cluster: ClusterQueries<PostgresConnection>

    /// The server and database, without the password: for messages and logs.
    public var description: String { connection.description }

    /// Connects with `url` (`postgres://user:password@host:port/database?sslmode=…`, or libpq's
    /// key=value form) and brings the schema up to date.
    /// - Throws: `StoreError` if the server cannot be reached, refuses the user, or holds a schema
    ///   written by a newer tunnel.
    public init(url: String) throws(StoreError) {
        connection = try PostgresConnection(url: url)
        rows = FleetRows(database: connection.description)
        cluster = ClusterQueries(session: connection)
        try migrate()
    }

    /// True if `url` carries a password (libpq reads one from PGPASSWORD or ~/.pgpass instead).
    public static func urlHoldsPassword(_ url: String) -> Bool {
        PostgresConnection.settings(url)?["password"] != nil
    }

    // MARK: Nodes

    public func node(named name: String) throws(StoreError) -> NodeEntry? {
        try connection.query(
            "SELECT \(FleetRows.nodeColumns) FROM nodes WHERE name = $1", [name], operation: "read node \(name)",
            row: rows.node
        ).first
    }

    public func nodes() throws(StoreError) -> [NodeEntry] {
        try connection.query(
            "SELECT \(FleetRows.nodeColumns) FROM nodes ORDER BY name COLLATE \"C\"", operation: "list nodes",
            row: rows.node)
    }

    public func saveNode(_ node: NodeEntry) throws(StoreError) {
        try connection.execute(
            """
            INSERT INTO nodes (\(FleetRows.nodeColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (name) DO UPDATE SET \(Self.replacing(FleetRows.nodeColumns))
            """,
            try rows.values(node), operation: "save node \(node.name)")
    }

    public func saveNodes(_ nodes: [NodeEntry]) throws(StoreError) {
        try connection.transaction(operation: "save \(nodes.count) nodes") { () throws(StoreError) in
            for node in nodes { try saveNode(node) }
        }
    }

    public func removeNode(named name: String) throws(StoreError) -> Bool {
        try connection.execute("DELETE FROM nodes WHERE name = $1", [name], operation: "remove node \(name)") > 0
    }

    // MARK: Tokens

    public func insertToken(_ token: TokenEntry) throws(StoreError) {
        let inserted = try connection.execute(
            "INSERT INTO tokens (\(FleetRows.tokenColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            try rows.values(token), operation: "insert token \(token.id)")
        guard inserted == 1 else { throw rows.duplicateToken(token.id) }
    }

    public func tokens() throws(StoreError) -> [TokenEntry] {
        try connection.query(
            "SELECT \(FleetRows.tokenColumns) FROM tokens ORDER BY id COLLATE \"C\"", operation: "list tokens",
            row: rows.token)
    }

    public func removeToken(id: String) throws(StoreError) -> Bool {
        try connection.execute("DELETE FROM tokens WHERE id = $1", [id], operation: "remove token \(id)") > 0
    }

    public func redeemToken(id: String, secretSHA256: String, keySHA256: String, nodeName: String, now: Int64)
        throws(StoreError) -> TokenRedemption
    {
        let operation = "redeem token \(id)"
        return try connection.transaction(operation: operation) { () throws(StoreError) -> TokenRedemption in
            // FOR UPDATE queues concurrent redemptions of this token behind this transaction, so
            // the same key racing itself sees its own earlier redemption instead of a duplicate row.
            let token = try connection.query(
                "SELECT \(FleetRows.tokenColumns) FROM tokens WHERE id = $1 FOR UPDATE", [id], operation: operation,
                row: rows.token
            ).first
            let check = try RedemptionCheck.decide(
                token: token, secretSHA256: secretSHA256,
                earlierNodeName: { () throws(StoreError) in
                    try connection.query(
                        "SELECT node_name FROM token_redemptions WHERE token_id = $1 AND key_sha256 = $2",
                        [id, keySHA256], operation: operation,
                        row: { $0.text(0) }
                    ).first
                }, now: now)
            var redeemed: TokenEntry
            switch check {
            case .refuse(let outcome): return outcome
            case .consume(let token): redeemed = token
            }
            // The one atomic step across replicas: the conditions hold at the moment of the write.
            let updated = try connection.execute(
                "UPDATE tokens SET uses_count = uses_count + 1 WHERE id = $1 AND uses_count < uses_allowed AND expires_at > $2",
                [id, now], operation: operation)
            guard updated == 1 else { return .usedUp(uses: redeemed.usesAllowed) }
            try connection.execute(
                "INSERT INTO token_redemptions (token_id, key_sha256, node_name, redeemed_at) VALUES ($1, $2, $3, $4)",
                [id, keySHA256, nodeName, now], operation: operation)
            redeemed.usesCount += 1
            return .redeemed(redeemed)
        }
    }

    // MARK: Users

    public func user(named name: String) throws(StoreError) -> UserEntry? {
        try connection.query(
            "SELECT \(FleetRows.userColumns) FROM users WHERE name = $1", [name], operation: "read user \(name)",
            row: rows.user
        ).first
    }

    public func users() throws(StoreError) -> [UserEntry] {
        try connection.query(
            "SELECT \(FleetRows.userColumns) FROM users ORDER BY name COLLATE \"C\"", operation: "list users",
            row: rows.user)
    }

    public func saveUser(_ user: UserEntry) throws(StoreError) {
        try connection.execute(
            """
            INSERT INTO users (\(FleetRows.userColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (name) DO UPDATE SET \(Self.replacing(FleetRows.userColumns))
            """,
            try rows.values(user), operation: "save user \(user.name)")
    }

    /// "a = EXCLUDED.a, b = EXCLUDED.b, …": an upsert that replaces every column, like SQLite's INSERT OR REPLACE.
    private static func replacing(_ columns: String) -> String {
        columns.split(separator: ",").map { $0.trimmingWhitespace }.map { "\($0) = EXCLUDED.\($0)" }.joined(
            separator: ", ")
    }

    // MARK: Schema

    /// Schema changes, append only, version for version the same as `SQLiteFleetStore`'s:
    /// entry `n` takes the schema from version `n` to `n + 1`. A shipped entry is never edited.
    private static let migrations = [
        """
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY NOT NULL,
            labels TEXT NOT NULL,
            key_sha256 TEXT,
            certificate_serial TEXT,
            certificate_not_after BIGINT,
            enrolled_at BIGINT,
            enrolled_with_token TEXT,
            last_seen BIGINT,
            last_address TEXT,
            last_disconnect_reason TEXT,
            revoked_at BIGINT,
            revoked_by TEXT
        );
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY NOT NULL,
            secret_sha256 TEXT NOT NULL,
            node_name TEXT,
            name_prefix TEXT,
            labels TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            uses_allowed BIGINT NOT NULL CHECK (uses_allowed >= 0),
            uses_count BIGINT NOT NULL CHECK (uses_count BETWEEN 0 AND uses_allowed),
            created_by TEXT NOT NULL
        );
        CREATE TABLE token_redemptions (
            token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
            key_sha256 TEXT NOT NULL,
            node_name TEXT NOT NULL,
            redeemed_at BIGINT NOT NULL,
            PRIMARY KEY (token_id, key_sha256)
        );
        CREATE TABLE users (
            name TEXT PRIMARY KEY NOT NULL,
            roles TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            certificate_serial TEXT,
            certificate_not_after BIGINT,
            revoked_at BIGINT,
            revoked_by TEXT
        );
        """,
        """
        CREATE TABLE replicas (
            name TEXT PRIMARY KEY NOT NULL,
            advertise TEXT NOT NULL,
            heartbeat_at BIGINT NOT NULL
        );
        CREATE TABLE presence (
            node TEXT PRIMARY KEY NOT NULL,
            replica TEXT NOT NULL,
            epoch BIGINT NOT NULL CHECK (epoch > 0),
            lease_until BIGINT NOT NULL
        );
        CREATE INDEX presence_by_replica ON presence (replica);
        CREATE TABLE fleet_changes (
            sequence BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            replica TEXT NOT NULL,
            recorded_at BIGINT NOT NULL
        );
        """,
    ]

    /// An arbitrary constant naming the advisory lock that serialises schema upgrades.
    private static let migrationLock = 0x7475_6e6e_656c

    /// Brings the schema to the newest version in one transaction under an advisory lock, so
    /// replicas starting together migrate once and a failed migration changes nothing.
    private func migrate() throws(StoreError) {
        let operation = "upgrade the schema"
        try connection.transaction(operation: operation) { () throws(StoreError) in
            _ = try connection.query("SELECT pg_advisory_xact_lock($1)", [Self.migrationLock], operation: operation) {
                _ in ()
            }
            try connection.executeScript(
                "CREATE TABLE IF NOT EXISTS tunnel_schema (version BIGINT NOT NULL)", operation: operation)
            let version = try connection.query(
                "SELECT version FROM tunnel_schema", operation: "read the schema version"
            ) { $0.int64(0) }.first
            if version == nil {
                try connection.execute("INSERT INTO tunnel_schema (version) VALUES (0)", [], operation: operation)
            }
            let current = version ?? 0
            guard current <= Self.migrations.count else {
                throw StoreError(
                    "\(description) was written by a newer tunnel (schema \(current)); upgrade tunnel or restore a backup"
                )
            }
            guard current >= 0 else {
                throw StoreError("\(description) has the invalid schema version \(current); restore a backup")
            }
            for (index, script) in Self.migrations.enumerated().dropFirst(Int(current)) {
                try connection.executeScript(script, operation: operation)
                try connection.execute("UPDATE tunnel_schema SET version = $1", [index + 1], operation: operation)
            }
        }
    }
}

extension Substring {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
