import TunnelMetrics
import TunnelState
import TunnelWire

/// A `FleetStore` that times every call of the store it wraps and counts its failures into the
/// gateway's metrics (`tunnel_store_operation_duration_seconds`, `tunnel_store_errors_total`),
/// so a slow or failing database shows on a dashboard before operators notice. Adds nothing
/// else: results and errors pass through unchanged. Loop-confined, like the store it wraps.
final class MeasuredFleetStore: FleetStore {
    let wrapped: FleetStore
    private let metrics: GatewayMetrics

    init(_ wrapped: FleetStore, metrics: GatewayMetrics) {
        self.wrapped = wrapped
        self.metrics = metrics
    }

    private func measure<T>(_ operation: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        let start = ContinuousClock.now
        do {
            let result = try body()
            metrics.storeCall(operation, seconds: Elapsed.seconds(since: start), failed: false)
            return result
        } catch {
            metrics.storeCall(operation, seconds: Elapsed.seconds(since: start), failed: true)
            throw error
        }
    }

    func node(named name: String) throws(StoreError) -> NodeEntry? {
        try measure("node") { () throws(StoreError) in try wrapped.node(named: name) }
    }
    func nodes() throws(StoreError) -> [NodeEntry] {
        try measure("nodes") { () throws(StoreError) in try wrapped.nodes() }
    }
    func nodes(after: String?, limit: Int) throws(StoreError) -> [NodeEntry] {
        try measure("nodes_page") { () throws(StoreError) in try wrapped.nodes(after: after, limit: limit) }
    }
    func saveNode(_ node: NodeEntry) throws(StoreError) {
        try measure("save_node") { () throws(StoreError) in try wrapped.saveNode(node) }
    }
    func saveNodes(_ nodes: [NodeEntry]) throws(StoreError) {
        try measure("save_nodes") { () throws(StoreError) in try wrapped.saveNodes(nodes) }
    }
    func removeNode(named name: String) throws(StoreError) -> Bool {
        try measure("remove_node") { () throws(StoreError) in try wrapped.removeNode(named: name) }
    }
    func insertToken(_ token: TokenEntry) throws(StoreError) {
        try measure("insert_token") { () throws(StoreError) in try wrapped.insertToken(token) }
    }
    func tokens() throws(StoreError) -> [TokenEntry] {
        try measure("tokens") { () throws(StoreError) in try wrapped.tokens() }
    }
    func removeToken(id: String) throws(StoreError) -> Bool {
        try measure("remove_token") { () throws(StoreError) in try wrapped.removeToken(id: id) }
    }
    func redeemToken(id: String, secretSHA256: String, keySHA256: String, nodeName: String, now: Int64)
        throws(StoreError) -> TokenRedemption
    {
        try measure("redeem_token") { () throws(StoreError) in
            try wrapped.redeemToken(
                id: id, secretSHA256: secretSHA256, keySHA256: keySHA256, nodeName: nodeName, now: now)
        }
    }
    func user(named name: String) throws(StoreError) -> UserEntry? {
        try measure("user") { () throws(StoreError) in try wrapped.user(named: name) }
    }
    func users() throws(StoreError) -> [UserEntry] {
        try measure("users") { () throws(StoreError) in try wrapped.users() }
    }
    func saveUser(_ user: UserEntry) throws(StoreError) {
        try measure("save_user") { () throws(StoreError) in try wrapped.saveUser(user) }
    }

    func heartbeat(replica: String, advertise: String, now: Int64) throws(StoreError) {
        try measure("heartbeat") { () throws(StoreError) in
            try wrapped.heartbeat(replica: replica, advertise: advertise, now: now)
        }
    }
    func replicas() throws(StoreError) -> [ReplicaEntry] {
        try measure("replicas") { () throws(StoreError) in try wrapped.replicas() }
    }
    func claimPresence(node: String, replica: String, leaseUntil: Int64) throws(StoreError) -> Int64 {
        try measure("claim_presence") { () throws(StoreError) in
            try wrapped.claimPresence(node: node, replica: replica, leaseUntil: leaseUntil)
        }
    }
    func renewLeases(replica: String, until: Int64) throws(StoreError) -> [String: Int64] {
        try measure("renew_leases") { () throws(StoreError) in try wrapped.renewLeases(replica: replica, until: until) }
    }
    func releasePresence(node: String, replica: String, epoch: Int64) throws(StoreError) -> Bool {
        try measure("release_presence") { () throws(StoreError) in
            try wrapped.releasePresence(node: node, replica: replica, epoch: epoch)
        }
    }
    func releaseAll(replica: String) throws(StoreError) -> Int {
        try measure("release_all") { () throws(StoreError) in try wrapped.releaseAll(replica: replica) }
    }
    func presence(of node: String, now: Int64) throws(StoreError) -> Presence? {
        try measure("presence") { () throws(StoreError) in try wrapped.presence(of: node, now: now) }
    }
    func presences(now: Int64) throws(StoreError) -> [Presence] {
        try measure("presences") { () throws(StoreError) in try wrapped.presences(now: now) }
    }
    func appendChange(_ kind: FleetChange.Kind, subject: String, detail: String, replica: String, now: Int64)
        throws(StoreError) -> Int64
    {
        try measure("append_change") { () throws(StoreError) in
            try wrapped.appendChange(kind, subject: subject, detail: detail, replica: replica, now: now)
        }
    }
    func changes(after sequence: Int64, limit: Int) throws(StoreError) -> [FleetChange] {
        try measure("changes") { () throws(StoreError) in try wrapped.changes(after: sequence, limit: limit) }
    }
    func latestChange() throws(StoreError) -> Int64 {
        try measure("latest_change") { () throws(StoreError) in try wrapped.latestChange() }
    }
    func pruneChanges(recordedBefore time: Int64) throws(StoreError) -> Int {
        try measure("prune_changes") { () throws(StoreError) in try wrapped.pruneChanges(recordedBefore: time) }
    }
}
