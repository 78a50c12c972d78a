import TunnelWire

/// The node, token and user statements, written once for both stores like `ClusterQueries`:
/// `?1`-style parameters (`SQLSession.dialect` translates them), upserts as `ON CONFLICT … DO
/// UPDATE` (SQLite ≥ 3.24 and PostgreSQL alike), and the two places where the dialects really
/// differ (byte order, the row lock of a redemption) taken from the session. What each call
/// does and why is documented on `FleetStore`.
struct FleetQueries<Session: SQLSession> {
    let session: Session
    let rows: FleetRows

    // MARK: Nodes

    func node(named name: String) throws(StoreError) -> NodeEntry? {
        try session.query(
            session.dialect("SELECT \(FleetRows.nodeColumns) FROM nodes WHERE name = ?1"), [name],
            operation: "read node \(name)", row: rows.node
        ).first
    }

    func nodes() throws(StoreError) -> [NodeEntry] {
        try session.query(
            "SELECT \(FleetRows.nodeColumns) FROM nodes ORDER BY name \(session.bytewiseCollation)", [],
            operation: "list nodes", row: rows.node)
    }

    func nodes(after: String?, limit: Int) throws(StoreError) -> [NodeEntry] {
        try session.query(
            session.dialect(
                "SELECT \(FleetRows.nodeColumns) FROM nodes WHERE name \(session.bytewiseCollation) > ?1 ORDER BY name \(session.bytewiseCollation) LIMIT ?2"
            ), [after ?? "", max(0, limit)], operation: "list nodes", row: rows.node)
    }

    func saveNode(_ node: NodeEntry) throws(StoreError) {
        try saveNode(node, statement: Self.upsert(into: "nodes", FleetRows.nodeColumns, key: "name", session: session))
    }

    /// The statement's text is made once for the batch: a reconnect storm saves thousands of rows.
    func saveNodes(_ nodes: [NodeEntry]) throws(StoreError) {
        let statement = Self.upsert(into: "nodes", FleetRows.nodeColumns, key: "name", session: session)
        try session.writeTransaction(operation: "save \(nodes.count) nodes") { () throws(StoreError) in
            for node in nodes { try saveNode(node, statement: statement) }
        }
    }

    private func saveNode(_ node: NodeEntry, statement: String) throws(StoreError) {
        try session.execute(statement, try rows.values(node), operation: "save node \(node.name)")
    }

    func removeNode(named name: String) throws(StoreError) -> Bool {
        try session.execute(
            session.dialect("DELETE FROM nodes WHERE name = ?1"), [name], operation: "remove node \(name)") > 0
    }

    // MARK: Tokens

    func insertToken(_ token: TokenEntry) throws(StoreError) {
        // DO NOTHING turns a duplicate id into "0 rows changed", which gets its own message;
        // other constraint failures (e.g. negative uses) still fail the statement.
        let inserted = try session.execute(
            session.dialect(
                "INSERT INTO tokens (\(FleetRows.tokenColumns)) VALUES (\(Self.parameters(FleetRows.tokenColumns))) ON CONFLICT (id) DO NOTHING"
            ), try rows.values(token), operation: "insert token \(token.id)")
        guard inserted == 1 else { throw rows.duplicateToken(token.id) }
    }

    func tokens() throws(StoreError) -> [TokenEntry] {
        try session.query(
            "SELECT \(FleetRows.tokenColumns) FROM tokens ORDER BY id \(session.bytewiseCollation)", [],
            operation: "list tokens", row: rows.token)
    }

    func removeToken(id: String) throws(StoreError) -> Bool {
        try session.execute(session.dialect("DELETE FROM tokens WHERE id = ?1"), [id], operation: "remove token \(id)")
            > 0
    }

    func redeemToken(id: String, secretSHA256: String, keySHA256: String, nodeName: String, now: Int64)
        throws(StoreError) -> TokenRedemption
    {
        let operation = "redeem token \(id)"
        return try session.writeTransaction(operation: operation) { () throws(StoreError) -> TokenRedemption in
            let token = try session.query(
                session.dialect("SELECT \(FleetRows.tokenColumns) FROM tokens WHERE id = ?1 \(session.rowLock)"), [id],
                operation: operation, row: rows.token
            ).first
            let check = try RedemptionCheck.decide(
                token: token, secretSHA256: secretSHA256,
                earlierNodeName: { () throws(StoreError) in
                    try session.query(
                        session.dialect(
                            "SELECT node_name FROM token_redemptions WHERE token_id = ?1 AND key_sha256 = ?2"),
                        [id, keySHA256], operation: operation, row: { $0.text(0) }
                    ).first
                }, now: now)
            var redeemed: TokenEntry
            switch check {
            case .refuse(let outcome): return outcome
            case .consume(let token): redeemed = token
            }
            // The one atomic step across writers: the conditions repeat the checks above and
            // hold at the moment of the write, whatever the transaction locked on begin.
            let updated = try session.execute(
                session.dialect(
                    "UPDATE tokens SET uses_count = uses_count + 1 WHERE id = ?1 AND uses_count < uses_allowed AND expires_at > ?2"
                ), [id, now], operation: operation)
            guard updated == 1 else { return .usedUp(uses: redeemed.usesAllowed) }
            try session.execute(
                session.dialect(
                    "INSERT INTO token_redemptions (token_id, key_sha256, node_name, redeemed_at) VALUES (?1, ?2, ?3, ?4)"
                ),
                [id, keySHA256, nodeName, now], operation: operation)
            redeemed.usesCount += 1
            return .redeemed(redeemed)
        }
    }

    // MARK: Users

    func user(named name: String) throws(StoreError) -> UserEntry? {
        try session.query(
            session.dialect("SELECT \(FleetRows.userColumns) FROM users WHERE name = ?1"), [name],
            operation: "read user \(name)", row: rows.user
        ).first
    }

    func users() throws(StoreError) -> [UserEntry] {
        try session.query(
            "SELECT \(FleetRows.userColumns) FROM users ORDER BY name \(session.bytewiseCollation)", [],
            operation: "list users", row: rows.user)
    }

    func saveUser(_ user: UserEntry) throws(StoreError) {
        try session.execute(
            Self.upsert(into: "users", FleetRows.userColumns, key: "name", session: session), try rows.values(user),
            operation: "save user \(user.name)")
    }

    // MARK: Statement text

    /// An insert that replaces every column of the row with the same `key`.
    static func upsert(into table: String, _ columns: String, key: String, session: Session) -> String {
        let names = columnNames(columns)
        let replaced = names.filter { $0 != key }.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        return session.dialect(
            "INSERT INTO \(table) (\(columns)) VALUES (\(parameters(columns))) ON CONFLICT (\(key)) DO UPDATE SET \(replaced)"
        )
    }

    /// "?1, ?2, …": one numbered parameter per column.
    static func parameters(_ columns: String) -> String {
        columnNames(columns).indices.map { "?\($0 + 1)" }.joined(separator: ", ")
    }

    private static func columnNames(_ columns: String) -> [String] {
        columns.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }
    }
}

/// A store whose node, token and user calls are the shared `FleetQueries` on its own connection.
protocol FleetBackedStore: FleetStore {
    associatedtype FleetSession: SQLSession
    var fleet: FleetQueries<FleetSession> { get }
}

extension FleetBackedStore {
    public func node(named name: String) throws(StoreError) -> NodeEntry? { try fleet.node(named: name) }
    public func nodes() throws(StoreError) -> [NodeEntry] { try fleet.nodes() }
    public func nodes(after: String?, limit: Int) throws(StoreError) -> [NodeEntry] {
        try fleet.nodes(after: after, limit: limit)
    }
    public func saveNode(_ node: NodeEntry) throws(StoreError) { try fleet.saveNode(node) }
    public func saveNodes(_ nodes: [NodeEntry]) throws(StoreError) { try fleet.saveNodes(nodes) }
    public func removeNode(named name: String) throws(StoreError) -> Bool { try fleet.removeNode(named: name) }
    public func insertToken(_ token: TokenEntry) throws(StoreError) { try fleet.insertToken(token) }
    public func tokens() throws(StoreError) -> [TokenEntry] { try fleet.tokens() }
    public func removeToken(id: String) throws(StoreError) -> Bool { try fleet.removeToken(id: id) }
    public func redeemToken(id: String, secretSHA256: String, keySHA256: String, nodeName: String, now: Int64)
        throws(StoreError) -> TokenRedemption
    {
        try fleet.redeemToken(id: id, secretSHA256: secretSHA256, keySHA256: keySHA256, nodeName: nodeName, now: now)
    }
    public func user(named name: String) throws(StoreError) -> UserEntry? { try fleet.user(named: name) }
    public func users() throws(StoreError) -> [UserEntry] { try fleet.users() }
    public func saveUser(_ user: UserEntry) throws(StoreError) { try fleet.saveUser(user) }
}
