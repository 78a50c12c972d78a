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
            for (script, next) in try FleetSchema.pending(from: version, in: "state database \(path)") {
                try database.executeScript(
                    database.schema(script) + "\nPRAGMA user_version = \(next);", operation: "upgrade the schema")
            }
        }
    }

}
