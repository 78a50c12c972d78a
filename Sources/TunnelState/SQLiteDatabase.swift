internal import CSQLite
internal import Glibc

/// One open SQLite connection with its cached prepared statements.
///
/// The sole owner of the `sqlite3` handle and of every statement prepared on it: `deinit`
/// finalizes the statements, then closes the handle. Every failure becomes a `StoreError`
/// that names the file, the operation and SQLite's own message. Loop-confined, like its user.
final class SQLiteDatabase {
    /// How long a connection waits for another connection's lock before failing.
    static let busyTimeoutMilliseconds: Int32 = 5000

    let path: String
    private let handle: OpaquePointer
    /// Prepared once per SQL text and reused, keyed by that text.
    private var statements: [String: OpaquePointer] = [:]

    /// Opens the database at `path`, creating the file with mode 0600 if it is missing, and
    /// setting an existing file to 0600: it holds key hashes and the operator list.
    init(path: String) throws(StoreError) {
        self.path = path
        try Self.createOrRestrictFile(path)
        var opened: OpaquePointer?
        // NOMUTEX: each connection is used by one thread at a time, so SQLite's per-connection
        // mutex would only cost time. The file already exists, hence no SQLITE_OPEN_CREATE.
        let code = sqlite3_open_v2(path, &opened, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard let opened else {
            throw StoreError(
                "state database \(path): could not open the file (SQLite is out of memory); free memory and retry")
        }
        guard code == SQLITE_OK else {
            let error = Self.error(
                path: path, operation: "open the file", code: code, detail: String(cString: sqlite3_errmsg(opened)))
            sqlite3_close_v2(opened)
            throw error
        }
        handle = opened
        // Wait for another connection's lock instead of failing at once (cannot fail on an open handle).
        sqlite3_busy_timeout(handle, Self.busyTimeoutMilliseconds)
    }

    deinit {
        for statement in statements.values {
            sqlite3_finalize(statement)
        }
        sqlite3_close_v2(handle)
    }

    /// Runs one statement with `values` bound to its `?` parameters in order, turning each
    /// result row into a `Row` while the row is current.
    /// - Parameter operation: what the caller was doing, for the error message ("save node a").
    func query<Row>(
        _ sql: String,
        _ values: [(any StoreValue)?] = [],
        operation: String,
        row makeRow: (SQLiteRow) throws(StoreError) -> Row
    ) throws(StoreError) -> [Row] {
        let statement = try prepared(sql, operation: operation)
        // Resetting at once ends the statement's read transaction, which would otherwise pin
        // an old WAL snapshot and keep other connections' writes from being checkpointed.
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, value) in values.enumerated() {
            let code = Self.bind(value, to: statement, at: Int32(offset + 1))
            guard code == SQLITE_OK else { throw error(operation, code: code) }
        }
        var rows: [Row] = []
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW: rows.append(try makeRow(SQLiteRow(statement: statement)))
            case SQLITE_DONE: return rows
            case let code: throw error(operation, code: code)
            }
        }
    }

    /// Runs one INSERT, UPDATE or DELETE and returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ values: [(any StoreValue)?], operation: String) throws(StoreError) -> Int {
        _ = try query(sql, values, operation: operation) { _ in () }
        return Int(sqlite3_changes(handle))
    }

    /// Runs fixed SQL that takes no values, possibly several statements (schema, pragmas).
    func executeScript(_ sql: String, operation: String) throws(StoreError) {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error(operation, code: code) }
    }

    /// Runs `body` in a transaction that takes the write lock at its start (BEGIN IMMEDIATE).
    ///
    /// Taking the lock up front means what `body` reads cannot change before it writes, and
    /// a competing writer waits in the busy handler instead of failing at its first write.
    /// Commits if `body` returns, rolls back if it or the commit throws.
    func immediateTransaction<Result>(operation: String, _ body: () throws(StoreError) -> Result) throws(StoreError)
        -> Result
    {
        try executeScript("BEGIN IMMEDIATE", operation: operation)
        do throws(StoreError) {
            let result = try body()
            try executeScript("COMMIT", operation: operation)
            return result
        } catch {
            // SQLite has already rolled back after some failures (e.g. a full disk).
            if sqlite3_get_autocommit(handle) == 0 {
                sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }

    /// Binds `value` to parameter `index` (1-based); returns SQLite's result code.
    private static func bind(_ value: (any StoreValue)?, to statement: OpaquePointer, at index: Int32) -> Int32 {
        switch value {
        case let text as String:
            // The explicit length keeps any embedded NUL; TRANSIENT makes SQLite copy the bytes
            // before withCString's buffer goes away.
            text.withCString {
                sqlite3_bind_text64(
                    statement, index, $0, sqlite3_uint64(text.utf8.count), tunnel_sqlite_transient(), UInt8(SQLITE_UTF8)
                )
            }
        case let number as Int64: sqlite3_bind_int64(statement, index, number)
        case let number as Int: sqlite3_bind_int64(statement, index, Int64(number))
        default: sqlite3_bind_null(statement, index)
        }
    }

    private func prepared(_ sql: String, operation: String) throws(StoreError) -> OpaquePointer {
        if let statement = statements[sql] {
            return statement
        }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error(operation, code: code) }
        statements[sql] = statement
        return statement
    }

    /// The error for a failed call on this connection; read before any further SQLite call,
    /// which would replace the connection's error message.
    private func error(_ operation: String, code: Int32) -> StoreError {
        Self.error(path: path, operation: operation, code: code, detail: String(cString: sqlite3_errmsg(handle)))
    }

    private static func error(path: String, operation: String, code: Int32, detail: String) -> StoreError {
        StoreError("state database \(path): could not \(operation) (\(detail)); \(advice(forResultCode: code))")
    }

    /// What the operator can do about a failure with this SQLite result code.
    private static func advice(forResultCode code: Int32) -> String {
        switch code & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED:
            "another process held it locked for more than \(busyTimeoutMilliseconds) ms; check for a stuck tunnel process using the same file and retry"
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            "the file is not an intact tunnel state database; restore a backup, or move the file aside to start with an empty state"
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH:
            "check that the file and its directory exist and are writable by the user tunnel runs as"
        case SQLITE_FULL:
            "free disk space and retry"
        case SQLITE_IOERR:
            "check the disk and file system (see the kernel log) and retry"
        case SQLITE_NOMEM:
            "free memory and retry"
        case SQLITE_CONSTRAINT:
            "the value breaks a rule of the schema named above; correct the value"
        default:
            "this is likely a bug in tunnel; please report it with this message"
        }
    }

    /// Creates `path` with mode 0600 unless it exists, and narrows an existing file to 0600.
    ///
    /// Done before SQLite opens the file because SQLite creates its WAL and shared-memory files
    /// with the database file's mode: restricting the main file first restricts those too.
    private static func createOrRestrictFile(_ path: String) throws(StoreError) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode_t(0o600))
        guard descriptor >= 0 else { throw fileError(path, "create or open the file") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw fileError(path, "read the mode of the file") }
        if status.st_mode & 0o777 != 0o600 {
            guard fchmod(descriptor, 0o600) == 0 else { throw fileError(path, "set the mode of the file to 0600") }
        }
    }

    private static func fileError(_ path: String, _ operation: String) -> StoreError {
        StoreError(
            "state database \(path): could not \(operation) (\(String(cString: strerror(errno)))); check that the directory exists and that the file and directory are writable by the user tunnel runs as"
        )
    }
}

/// The current row of a statement being stepped; valid only inside the `query` row closure.
struct SQLiteRow: StoreRow {
    fileprivate let statement: OpaquePointer

    func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(statement, column)
    }

    func optionalInt64(_ column: Int32) -> Int64? {
        sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : int64(column)
    }

    /// The column as UTF-8 text; "" for NULL (use only on NOT NULL columns).
    func text(_ column: Int32) -> String {
        optionalText(column) ?? ""
    }

    func optionalText(_ column: Int32) -> String? {
        // column_text before column_bytes: the byte count is of the text conversion.
        guard let bytes = sqlite3_column_text(statement, column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
}

extension SQLiteDatabase: SQLSession {
    func writeTransaction<Result>(operation: String, _ body: () throws(StoreError) -> Result) throws(StoreError)
        -> Result
    {
        try immediateTransaction(operation: operation, body)
    }

    /// SQLite reads `?1` as the first parameter already.
    func dialect(_ sql: String) -> String { sql }

    /// The schema is written in SQLite's dialect.
    func schema(_ sql: String) -> String { sql }

    /// BEGIN IMMEDIATE already admits one writer at a time.
    var changeFeedLock: String? { nil }

    var bytewiseCollation: String { "COLLATE BINARY" }

    /// BEGIN IMMEDIATE already holds the database's one write lock for the whole transaction.
    var rowLock: String { "" }
}
