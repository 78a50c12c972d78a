internal import Foundation

/// The fleet state in an embedded SQLite database file, the way k3s keeps its state.
///
/// Every change is committed durably (WAL with `synchronous=FULL`) before a call returns.
/// Several instances, in this or other processes, may open the same file: token redemption
/// is one IMMEDIATE transaction guarded by a conditional UPDATE, so exactly one of them wins.
public final class SQLiteFleetStore: FleetStore, FleetBackedStore, ClusterBackedStore {
    private let database: SQLiteDatabase
    let fleet: FleetQueries<SQLiteDatabase>
    let cluster: ClusterQueries<SQLiteDatabase>

    /// The database file.
    public var path: String { database.path }

    /// Opens the database at `path`, creating it (mode 0600) if missing and bringing its
    /// schema up to date. The directory is the caller's to create and protect.
    /// - Throws: `StoreError` if the file cannot be opened, is not a tunnel state database,
    ///   or was written by a newer tunnel.
    public init(path: String) throws(StoreError) {
        database = try SQLiteDatabase(path: path)
        fleet = FleetQueries(session: database, rows: FleetRows(database: "state database \(path)"))
        cluster = ClusterQueries(session: database)
        try enableWriteAheadLog()
        // FULL: a committed change survives power loss, not only a crash of the process.
        // foreign_keys: removing a token removes its redemptions (ON DELETE CASCADE).
        try database.executeScript(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", operation: "configure the connection")
        try migrate()
    }

    // MARK: Opening

    /// Schema changes, append only: entry `n` takes the schema from version `n` to `n + 1`
    /// and ends by recording that version. A shipped entry is never edited.
    private static let migrations = [
        """
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY NOT NULL,
            labels TEXT NOT NULL,
            key_sha256 TEXT,
            certificate_serial TEXT,
            certificate_not_after INTEGER,
            enrolled_at INTEGER,
            enrolled_with_token TEXT,
            last_seen INTEGER,
            last_address TEXT,
            last_disconnect_reason TEXT,
            revoked_at INTEGER,
            revoked_by TEXT
        ) STRICT;
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY NOT NULL,
            secret_sha256 TEXT NOT NULL,
            node_name TEXT,
            name_prefix TEXT,
            labels TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            uses_allowed INTEGER NOT NULL CHECK (uses_allowed >= 0),
            uses_count INTEGER NOT NULL CHECK (uses_count BETWEEN 0 AND uses_allowed),
            created_by TEXT NOT NULL
        ) STRICT;
        CREATE TABLE token_redemptions (
            token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
            key_sha256 TEXT NOT NULL,
            node_name TEXT NOT NULL,
            redeemed_at INTEGER NOT NULL,
            PRIMARY KEY (token_id, key_sha256)
        ) STRICT;
        CREATE TABLE users (
            name TEXT PRIMARY KEY NOT NULL,
            roles TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            certificate_serial TEXT,
            certificate_not_after INTEGER,
            revoked_at INTEGER,
            revoked_by TEXT
        ) STRICT;
        PRAGMA user_version = 1;
        """,
        """
        CREATE TABLE replicas (
            name TEXT PRIMARY KEY NOT NULL,
            advertise TEXT NOT NULL,
            heartbeat_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE presence (
            node TEXT PRIMARY KEY NOT NULL,
            replica TEXT NOT NULL,
            epoch INTEGER NOT NULL CHECK (epoch > 0),
            lease_until INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX presence_by_replica ON presence (replica);
        CREATE TABLE fleet_changes (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            replica TEXT NOT NULL,
            recorded_at INTEGER NOT NULL
        ) STRICT;
        PRAGMA user_version = 2;
        """,
    ]

    /// WAL lets readers proceed while one connection writes, and commits with one fsync.
    private func enableWriteAheadLog() throws(StoreError) {
        let operation = "enable write-ahead logging"
        let mode = try database.query("PRAGMA journal_mode = WAL", operation: operation) { $0.text(0) }.first
        guard mode == "wal" else {
            throw StoreError(
                "state database \(path): could not \(operation) (the journal mode stayed \(mode ?? "unknown")); keep the database on a local file system"
            )
        }
    }

    /// Brings the schema to the newest version, inside one transaction so that concurrent
    /// openers migrate once and a failed migration leaves the file as it was.
    private func migrate() throws(StoreError) {
        try database.immediateTransaction(operation: "upgrade the schema") { () throws(StoreError) in
            let version =
                try database.query("PRAGMA user_version", operation: "read the schema version") { $0.int64(0) }.first
                ?? 0
            guard version <= Self.migrations.count else {
                throw StoreError(
                    "state database \(path) was written by a newer tunnel (schema \(version)); upgrade tunnel or restore a backup"
                )
            }
            guard version >= 0 else {
                throw StoreError("state database \(path) has the invalid schema version \(version); restore a backup")
            }
            for script in Self.migrations[Int(version)...] {
                try database.executeScript(script, operation: "upgrade the schema")
            }
        }
    }

}
