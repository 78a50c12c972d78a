internal import CLibPQ
internal import Glibc

/// One connection to PostgreSQL through libpq, used synchronously.
///
/// The sole owner of the `PGconn`: `deinit` finishes it. Calls block the calling thread until
/// the server answers; each statement is bounded by the server's `statement_timeout` and the
/// connection by `connect_timeout` and `tcp_user_timeout`, so a stuck server or a dead link
/// costs at most a few seconds of the caller's loop (docs/TUNNEL.md, "Cluster"). A broken
/// connection is re-established once at the next call. Loop-confined, like its user.
final class PostgresConnection {
    /// Limits every statement (and the lock waits inside it) on the server.
    static let statementTimeoutMilliseconds = 5000
    /// Seconds to establish the connection.
    static let connectTimeoutSeconds = 5
    /// How long unacknowledged data may stay in flight before the kernel gives up the link.
    static let tcpUserTimeoutMilliseconds = 10_000

    /// How errors name the server: "state database postgres://tunnel@db:5432/tunnel" (never the password).
    let description: String
    private let handle: OpaquePointer

    /// Connects with a libpq connection URI or key=value string; settings named in it win over
    /// the timeouts above, except the statement timeout, which is set after connecting.
    init(url: String) throws(StoreError) {
        description = "state database \(Self.redacted(url))"
        let keywords = ["connect_timeout", "tcp_user_timeout", "application_name", "dbname"]
        let values = ["\(Self.connectTimeoutSeconds)", "\(Self.tcpUserTimeoutMilliseconds)", "tunnel-gateway", url]
        guard let connection = Self.connect(keywords: keywords, values: values) else {
            throw StoreError("\(description): could not connect (libpq is out of memory); free memory and retry")
        }
        handle = connection
        // Throwing from here on runs deinit, which finishes the connection.
        guard PQstatus(handle) == CONNECTION_OK else {
            throw StoreError(
                "\(description): could not connect (\(Self.message(PQerrorMessage(handle)))); check the URL, that the server runs and accepts this user from here"
            )
        }
        try configureSession()
    }

    deinit {
        PQfinish(handle)
    }

    /// Runs one statement with `values` as its `$1…` parameters (sent as text), turning each
    /// result row into a `Row`.
    func query<Row>(
        _ sql: String, _ values: [(any StoreValue)?] = [], operation: String,
        row makeRow: (PostgresRow) throws(StoreError) -> Row
    ) throws(StoreError) -> [Row] {
        let result = try run(sql, values, operation: operation)
        defer { PQclear(result) }
        var rows: [Row] = []
        for index in 0..<PQntuples(result) {
            rows.append(try makeRow(PostgresRow(result: result, row: index)))
        }
        return rows
    }

    /// Runs one INSERT, UPDATE or DELETE and returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ values: [(any StoreValue)?], operation: String) throws(StoreError) -> Int {
        let result = try run(sql, values, operation: operation)
        defer { PQclear(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// Runs fixed SQL that takes no values, possibly several statements (schema, settings).
    func executeScript(_ sql: String, operation: String) throws(StoreError) {
        try reconnectIfBroken(operation: operation)
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, operation: operation)
    }

    /// Runs `body` in a transaction: commits if it returns, rolls back if it or the commit throws.
    func transaction<Result>(operation: String, _ body: () throws(StoreError) -> Result) throws(StoreError) -> Result {
        try executeScript("BEGIN", operation: operation)
        do throws(StoreError) {
            let result = try body()
            try executeScript("COMMIT", operation: operation)
            return result
        } catch {
            if PQtransactionStatus(handle) != PQTRANS_IDLE {
                PQclear(PQexec(handle, "ROLLBACK"))
            }
            throw error
        }
    }

    private func run(_ sql: String, _ values: [(any StoreValue)?], operation: String) throws(StoreError)
        -> OpaquePointer?
    {
        try reconnectIfBroken(operation: operation)
        let texts: [String?] = values.map { value in
            switch value {
            case let text as String: text
            case let number as Int64: String(number)
            case let number as Int: String(number)
            default: nil
            }
        }
        let result = withCStrings(texts) { pointers in
            PQexecParams(handle, sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
        }
        do {
            try check(result, operation: operation)
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    /// Re-establishes a connection the server or the network broke, outside a transaction
    /// (inside one, the transaction is lost anyway and the caller's error says so).
    private func reconnectIfBroken(operation: String) throws(StoreError) {
        guard PQstatus(handle) == CONNECTION_BAD else { return }
        PQreset(handle)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw StoreError(
                "\(description): could not \(operation) (lost the connection: \(Self.message(PQerrorMessage(handle)))); check that the server runs and is reachable"
            )
        }
        try configureSession()
    }

    private func configureSession() throws(StoreError) {
        try executeScript(
            """
            SET statement_timeout = \(Self.statementTimeoutMilliseconds); \
            SET idle_in_transaction_session_timeout = \(Self.statementTimeoutMilliseconds * 2); \
            SET client_min_messages = warning
            """,
            operation: "configure the connection")
    }

    private func check(_ result: OpaquePointer?, operation: String) throws(StoreError) {
        let status = PQresultStatus(result)
        guard status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK else { return }
        let detail = result.map { Self.message(PQresultErrorMessage($0)) } ?? Self.message(PQerrorMessage(handle))
        let state =
            result.flatMap { PQresultErrorField($0, tunnel_pq_diag_sqlstate()) }.map { String(cString: $0) } ?? ""
        throw StoreError("\(description): could not \(operation) (\(detail)); \(Self.advice(sqlState: state))")
    }

    /// What the operator can do about a failure with this SQLSTATE (PostgreSQL, Appendix A).
    private static func advice(sqlState: String) -> String {
        switch sqlState.prefix(2) {
        case "57" where sqlState == "57014":
            "the statement ran longer than \(statementTimeoutMilliseconds) ms; check the database server's load and locks and retry"
        case "08", "57": "the connection to the server failed; check that the server runs and is reachable, and retry"
        case "23": "the value breaks a rule of the schema named above; correct the value"
        case "42":
            "the database does not hold the tunnel schema this version expects; check the URL names the right database"
        case "53": "the database server is out of resources (disk, memory or connections); free them and retry"
        case "28": "the server refused the credentials; check the user and password in the URL"
        case "40": "the transaction conflicted with another replica's; retry"
        default: "this is likely a bug in tunnel; please report it with this message"
        }
    }

    private static func connect(keywords: [String], values: [String]) -> OpaquePointer? {
        withCStrings(keywords + [nil]) { keywordPointers in
            withCStrings(values + [nil]) { valuePointers in
                // expand_dbname: the URL in "dbname" is parsed, and its settings override the earlier keywords.
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
    }

    /// The URL with any password removed, for messages and logs.
    static func redacted(_ url: String) -> String {
        guard let settings = settings(url) else { return "(an unparseable connection URL)" }
        let user = settings["user"].map { "\($0)@" } ?? ""
        let port = settings["port"].map { ":\($0)" } ?? ""
        return "postgres://\(user)\(settings["host"] ?? settings["hostaddr"] ?? "")\(port)/\(settings["dbname"] ?? "")"
    }

    /// The settings a libpq URL or key=value string gives explicitly; nil if it does not parse.
    static func settings(_ url: String) -> [String: String]? {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &errorMessage) else {
            PQfreemem(errorMessage)
            return nil
        }
        defer { PQconninfoFree(options) }
        var settings: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                settings[String(cString: keyword)] = String(cString: value)
            }
            option += 1
        }
        return settings
    }

    private static func message(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "no message" }
        // libpq messages end with a newline and may span lines; keep one line.
        return String(cString: text).split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Calls `body` with C strings for `strings` (nil stays a null pointer), valid only inside it.
private func withCStrings<Result>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> Result) -> Result {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}

/// One row of a query result; valid only inside the `query` row closure.
struct PostgresRow: StoreRow {
    fileprivate let result: OpaquePointer?
    fileprivate let row: Int32

    func int64(_ column: Int32) -> Int64 {
        optionalInt64(column) ?? 0
    }

    func optionalInt64(_ column: Int32) -> Int64? {
        optionalText(column).flatMap { Int64($0) }
    }

    func text(_ column: Int32) -> String {
        optionalText(column) ?? ""
    }

    func optionalText(_ column: Int32) -> String? {
        guard PQgetisnull(result, row, column) == 0, let value = PQgetvalue(result, row, column) else { return nil }
        return String(
            decoding: UnsafeBufferPointer(start: value, count: Int(PQgetlength(result, row, column))).map {
                UInt8(bitPattern: $0)
            }, as: UTF8.self)
    }
}

extension PostgresConnection: SQLSession {
    func writeTransaction<Result>(operation: String, _ body: () throws(StoreError) -> Result) throws(StoreError)
        -> Result
    {
        try transaction(operation: operation, body)
    }

    /// PostgreSQL numbers its parameters `$1`; the shared SQL holds no other `?`.
    func dialect(_ sql: String) -> String { sql.replacing("?", with: "$") }

    /// SQLite's 64-bit INTEGER is BIGINT here, its AUTOINCREMENT key an identity column, and
    /// PostgreSQL checks column types without STRICT.
    func schema(_ sql: String) -> String {
        sql.replacing("INTEGER PRIMARY KEY AUTOINCREMENT", with: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
            .replacing(" INTEGER", with: " BIGINT").replacing(") STRICT;", with: ");")
    }

    /// A sequence number is taken at insert but visible at commit; serialising the appends
    /// keeps a reader that saw n from missing a smaller number committed later. Appends are
    /// rare (revocations, policy changes), so the lock costs nothing that matters.
    var changeFeedLock: String? { "LOCK TABLE fleet_changes IN SHARE ROW EXCLUSIVE MODE" }

    /// "C" compares bytes; the database's default collation may follow a locale.
    var bytewiseCollation: String { "COLLATE \"C\"" }

    /// Queues concurrent redemptions of a token behind this transaction, so the same key racing
    /// itself sees its own earlier redemption instead of a duplicate row.
    var rowLock: String { "FOR UPDATE" }
}
