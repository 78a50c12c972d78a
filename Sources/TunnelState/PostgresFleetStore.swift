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
            for (script, next) in try FleetSchema.pending(from: version ?? 0, in: description) {
                try connection.executeScript(connection.schema(script), operation: operation)
                try connection.execute("UPDATE tunnel_schema SET version = $1", [next], operation: operation)
            }
        }
    }
}
