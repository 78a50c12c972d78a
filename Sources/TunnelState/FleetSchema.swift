/// The tables of both stores, written once in SQLite's dialect (STRICT tables, INTEGER
/// columns) and translated for PostgreSQL by `SQLSession.schema`.
enum FleetSchema {
    /// Schema changes, append only: entry `n` takes the schema from version `n` to `n + 1`;
    /// each store records the version its own way. A shipped entry is never edited (what it
    /// makes in either database is fixed by then, so neither may `SQLSession.schema` change).
    static let migrations = [
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
        """,
    ]

    /// The migrations a store at schema `version` still needs, each with the version it leads
    /// to. A version this tunnel does not know (a newer one's, or a negative one) is refused,
    /// naming `store`: the same checks and sentences for both stores.
    static func pending(from version: Int64, in store: String) throws(StoreError) -> [(
        script: String, version: Int
    )] {
        guard version <= migrations.count else {
            throw StoreError(
                "\(store) was written by a newer tunnel (schema \(version)); upgrade tunnel or restore a backup")
        }
        guard version >= 0 else {
            throw StoreError("\(store) has the invalid schema version \(version); restore a backup")
        }
        return migrations.enumerated().dropFirst(Int(version)).map { ($0.element, $0.offset + 1) }
    }
}
