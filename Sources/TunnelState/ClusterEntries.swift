/// A gateway replica as the shared store knows it: where the others dial it, and when it last
/// said it was alive. Times are seconds since 1970 (UTC), like every time in the store.
public struct ReplicaEntry: Sendable, Equatable, Codable {
    /// The replica's name (`--replica-name`), a DNS label.
    public var name: String
    /// `host:port` where the other replicas reach it (`--advertise`).
    public var advertise: String
    public var heartbeatAt: Int64

    public init(name: String, advertise: String, heartbeatAt: Int64) {
        self.name = name
        self.advertise = advertise
        self.heartbeatAt = heartbeatAt
    }
}

/// Which replica holds a node's live session, under which session epoch, until when.
///
/// A replica holds the node while `leaseUntil` lies in the future; it renews the lease while
/// the session lives and clears it when the session ends. The epoch grows by one with every
/// session of the node anywhere in the cluster, so the highest epoch is the newest session.
public struct Presence: Sendable, Equatable, Codable {
    public var node: String
    public var replica: String
    /// The holding replica's `--advertise` address; "" if it never sent a heartbeat.
    public var advertise: String
    public var epoch: Int64
    public var leaseUntil: Int64

    public init(node: String, replica: String, advertise: String, epoch: Int64, leaseUntil: Int64) {
        self.node = node
        self.replica = replica
        self.advertise = advertise
        self.epoch = epoch
        self.leaseUntil = leaseUntil
    }
}

/// One entry of the cluster's change feed: something a replica did that every other replica
/// must apply too (a revocation ends sessions everywhere; a new policy applies everywhere).
public struct FleetChange: Sendable, Equatable, Codable {
    /// What changed; the subject says which one.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A node was revoked or removed: its session ends everywhere. Subject: the node.
        case nodeCut = "node_cut"
        /// An operator was revoked or re-issued: their sessions end everywhere. Subject: the user.
        case operatorCut = "operator_cut"
        /// A replica loaded a new policy. Subject: its version; detail: the policy file's text.
        case policy
    }

    /// Grows with every change, in commit order: a replica reads the ones after the last it saw.
    public var sequence: Int64
    public var kind: Kind
    public var subject: String
    /// The reason (cuts) or the policy text.
    public var detail: String
    /// The replica that made the change.
    public var replica: String
    public var recordedAt: Int64

    public init(sequence: Int64, kind: Kind, subject: String, detail: String, replica: String, recordedAt: Int64) {
        self.sequence = sequence
        self.kind = kind
        self.subject = subject
        self.detail = detail
        self.replica = replica
        self.recordedAt = recordedAt
    }
}
