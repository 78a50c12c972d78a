/// The fleet state in a PostgreSQL database shared by the replicas of a gateway cluster.
///
/// The same tables, columns and schema versions as `SQLiteFleetStore` (`FleetRows` maps both),
/// with the same statements (`FleetQueries`, `ClusterQueries`); only the schema scripts are in
/// PostgreSQL's dialect. Every call is one statement or one transaction on one connection,
/// committed before it returns; a replica's crash loses nothing it has answered. Token
/// redemption locks the token row and consumes with a conditional UPDATE, so exactly one of
/// any number of replicas racing on a single-use token wins.
///
/// Synchronous: each call blocks the loop for one round trip to the server (see
/// `PostgresConnection` for the bounds, docs/TUNNEL.md for the cost).
public final class PostgresFleetStore: FleetStore, FleetBackedStore, ClusterBackedStore {
    let connection: PostgresConnection
    let fleet: FleetQueries<PostgresConnection>
    let cluster: ClusterQueries<PostgresConnection>

    /// The server and database, without the password: for messages and logs.
    public var description: String { connection.description }

    /// Connects with `url` (`postgres://user:password@host:port/database?sslmode=…`, or libpq's
    /// key=value form) and brings the schema up to date.
    /// - Throws: `StoreError` if the server cannot be reached, refuses the user, or holds a schema
    ///   written by a newer tunnel.
    public init(url: String) throws(StoreError) {
        connection = try PostgresConnection(url: url)
        fleet = FleetQueries(session: connection, rows: FleetRows(database: connection.description))
        cluster = ClusterQueries(session: connection)
        try migrate()
    }

    /// True if `url` carries a password (libpq reads one from PGPASSWORD or ~/.pgpass instead).
    public static func urlHoldsPassword(_ url: String) -> Bool {
        PostgresConnection.settings(url)?["password"] != nil
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
