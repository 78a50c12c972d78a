import Logging
import TunnelIO
import TunnelState
import TunnelText

/// Who this gateway is in a cluster: its replica name and where the other replicas dial it.
public struct ReplicaIdentity: Sendable, Equatable {
    /// A DNS label, unique in the cluster; carried by every audit record this replica writes.
    public var name: String
    /// `host:port` the other replicas reach this one at (`--advertise`).
    public var advertise: String

    public init(name: String, advertise: String) {
        self.name = name
        self.advertise = advertise
    }
}

/// Where a replica is in the cluster's change feed, and which changes it must apply: the ones
/// other replicas made (its own it applied when it made them).
struct ChangeFeedCursor {
    /// The most changes read per poll; the rest come at the next poll.
    static let batchLimit = 100
    private(set) var lastSequence: Int64

    init(startingAfter sequence: Int64) {
        lastSequence = sequence
    }

    /// Advances past `changes` (oldest first) and returns those `replica` must apply.
    mutating func read(_ changes: [FleetChange], replica: String) -> [FleetChange] {
        let fresh = changes.filter { $0.sequence > lastSequence }
        lastSequence = fresh.last?.sequence ?? lastSequence
        return fresh.filter { $0.replica != replica }
    }
}

/// A replica's link to the rest of the cluster through the shared store (docs/CLUSTER.md):
/// records which nodes it holds (claims, renews and releases leases, `PresenceLedger`
/// decides), closes its sessions a newer session elsewhere superseded, sends its heartbeat,
/// publishes its revocations and policy changes and applies the other replicas' ones.
///
/// Every store call is one short round trip on the loop, made at a session's start and end and
/// from a one-second timer, never per stream. A store that cannot be reached costs the cluster
/// view, not the local sessions: they go on, and claims are retried. Loop-confined.
final class ClusterSync {
    /// How often the change feed is read (and renewals and pending claims checked): a revocation
    /// at one replica reaches the others within about this long.
    static let pollMilliseconds: UInt64 = 1_000
    /// Changes older than this leave the feed: a replica reads the feed from its end when it
    /// starts, so only a running replica cut off from the store for longer would miss one.
    static let changeRetentionSeconds: Int64 = 86_400
    /// How often a replica prunes the feed.
    static let pruneEverySeconds: Int64 = 3_600

    let identity: ReplicaIdentity
    private unowned let gateway: Gateway
    private let store: FleetStore
    private let clock: () -> Int64
    private(set) var ledger = PresenceLedger()
    /// Nil until the feed's end at start was read: reading from an unknown point would replay
    /// old cuts and policies.
    private(set) var cursor: ChangeFeedCursor?
    private let timer: LoopTimer
    /// The last store failure that was logged, so a lasting outage logs once, and its end too.
    private var storeTrouble: String?
    private var retry = StoreRetry()
    private var nextPrune: Int64 = 0

    init(identity: ReplicaIdentity, gateway: Gateway, store: FleetStore, clock: @escaping () -> Int64) {
        self.identity = identity
        self.gateway = gateway
        self.store = store
        self.clock = clock
        timer = LoopTimer(loop: gateway.loop)
    }

    /// Announces the replica, ends the leases its previous run left, and starts reading the feed
    /// from its current end (what happened before this start is already in the store's state).
    func start() {
        let now = clock()
        attempt("join the cluster") { () throws(StoreError) in
            try store.heartbeat(replica: identity.name, advertise: identity.advertise, now: now)
            let released = try store.releaseAll(replica: identity.name)
            if released > 0 {
                gateway.logger.notice(
                    "ended the node leases of this replica's previous run",
                    metadata: ["replica": "\(identity.name)", "leases": "\(released)"])
            }
        }
        readChanges()
        _ = ledger.renewalDue(now: now)
        timer.start(after: Self.pollMilliseconds, repeat: Self.pollMilliseconds) { [unowned self] in tick() }
    }

    /// Stops the timer and ends this replica's leases, so its nodes show offline at once.
    func stop() {
        timer.close()
        attempt("release the node leases", always: true) { () throws(StoreError) in
            _ = try store.releaseAll(replica: identity.name)
        }
    }

    /// A node session started here: claims it; returns its cluster-wide epoch, or nil when the
    /// store could not be reached (the claim is retried at the next tick).
    func sessionStarted(node: String) -> Int64? {
        ledger.sessionStarted(node: node)
        return claim(node)
    }

    /// A node session here ended: releases its lease if it still holds it.
    func sessionEnded(node: String) {
        guard let epoch = ledger.sessionEnded(node: node) else { return }
        attempt("release the presence of node \(node)") { () throws(StoreError) in
            _ = try store.releasePresence(node: node, replica: identity.name, epoch: epoch)
        }
    }

    /// Tells the other replicas to apply a change this replica made.
    func publish(_ kind: FleetChange.Kind, subject: String, detail: String) {
        attempt("publish a \(kind.rawValue) change of \(subject) to the other replicas", always: true) {
            () throws(StoreError) in
            _ = try store.appendChange(kind, subject: subject, detail: detail, replica: identity.name, now: clock())
        }
    }

    /// Every live presence, for the node list; empty when the store cannot be read.
    func livePresences() -> [String: Presence] {
        let now = clock()
        let presences =
            attempt("read the cluster's presences") { () throws(StoreError) in try store.presences(now: now) } ?? []
        return Dictionary(presences.map { ($0.node, $0) }) { first, _ in first }
    }

    /// Who holds `node` by the store, for routing a stream there (`PresenceDirectory`).
    func presence(of node: String) -> NodePresence? {
        let now = clock()
        guard
            let held = attempt(
                "read the presence of node \(node)", { () throws(StoreError) in try store.presence(of: node, now: now) }
            ) ?? nil
        else { return nil }
        return NodePresence(
            replica: held.replica, advertise: held.advertise, epoch: held.epoch, leaseExpires: held.leaseUntil)
    }

    private func claim(_ node: String) -> Int64? {
        let until = ledger.leaseEnd(now: clock())
        let epoch = attempt("record the presence of node \(node)") { () throws(StoreError) in
            try store.claimPresence(node: node, replica: identity.name, leaseUntil: until)
        }
        if let epoch { ledger.claimed(node: node, epoch: epoch) }
        return epoch
    }

    private func tick() {
        let now = clock()
        // One failed claim stops the round: the next ones would wait on the same failing store.
        for node in ledger.unclaimed where claim(node) == nil { break }
        if ledger.renewalDue(now: now) { renew(now: now) }
        readChanges()
    }

    private func renew(now: Int64) {
        let until = ledger.leaseEnd(now: now)
        guard
            let held = attempt(
                "renew the node leases",
                { () throws(StoreError) -> [String: Int64] in
                    try store.heartbeat(replica: identity.name, advertise: identity.advertise, now: now)
                    return try store.renewLeases(replica: identity.name, until: until)
                })
        else { return }
        if now >= nextPrune {
            nextPrune = now + Self.pruneEverySeconds
            attempt("prune the change feed") { () throws(StoreError) in
                _ = try store.pruneChanges(recordedBefore: now - Self.changeRetentionSeconds)
            }
        }
        let outcome = ledger.renewed(stillHeld: held)
        for node in outcome.superseded {
            let holder =
                attempt("read the presence of node \(node)") { () throws(StoreError) in
                    try store.presence(of: node, now: now)
                } ?? nil
            gateway.fenceNode(node, newerOn: holder?.replica)
        }
        for (node, epoch) in outcome.orphaned.sorted(by: { $0.key < $1.key }) {
            attempt("release the presence of node \(node)") { () throws(StoreError) in
                _ = try store.releasePresence(node: node, replica: identity.name, epoch: epoch)
            }
        }
    }

    /// Applies the other replicas' new changes; the first call only finds where the feed ends.
    private func readChanges() {
        guard var cursor else {
            cursor = attempt("read the change feed") { () throws(StoreError) in
                ChangeFeedCursor(startingAfter: try store.latestChange())
            }
            return
        }
        let after = cursor.lastSequence
        guard
            let changes = attempt(
                "read the change feed",
                { () throws(StoreError) in try store.changes(after: after, limit: ChangeFeedCursor.batchLimit) })
        else { return }
        let fresh = cursor.read(changes, replica: identity.name)
        self.cursor = cursor
        for change in fresh {
            gateway.applyClusterChange(change)
        }
    }

    /// Runs one store call, unless the store failed lately and `retry` says to wait (`always`
    /// overrides that for what an admin just did); a failure is logged once until the store
    /// answers again.
    @discardableResult
    private func attempt<Result>(_ what: String, always: Bool = false, _ body: () throws(StoreError) -> Result)
        -> Result?
    {
        guard always || retry.mayCall(now: clock()) else { return nil }
        do {
            let result = try body()
            retry.succeeded()
            if let trouble = storeTrouble {
                storeTrouble = nil
                gateway.logger.notice(
                    "the shared store answers again; cluster presence and changes resume",
                    metadata: ["after": "\(trouble)"])
            }
            return result
        } catch {
            retry.failed(now: clock())
            if storeTrouble == nil {
                gateway.logger.error(
                    "cannot \(what); local sessions go on, the cluster's view of them lags until the store answers",
                    metadata: ["error": "\(error.message)"])
            }
            storeTrouble = error.message
            return nil
        }
    }
}

/// When to call a failing store again. A call to an unreachable server can block the loop for
/// the connect timeout (5 s), so after a failure the periodic calls wait 1 s, then 2, 4, 8, and
/// 15 s at most (one lease: a store that answers again sees the leases renewed within it).
struct StoreRetry {
    static let firstDelaySeconds: Int64 = 1
    static let maxDelaySeconds: Int64 = 15
    private(set) var failures = 0
    private var retryAt: Int64 = 0

    func mayCall(now: Int64) -> Bool {
        failures == 0 || now >= retryAt
    }

    mutating func failed(now: Int64) {
        failures += 1
        retryAt = now + min(Self.maxDelaySeconds, Self.firstDelaySeconds << min(failures - 1, 8))
    }

    mutating func succeeded() {
        failures = 0
    }
}
