/// Where an operator's stream to a node goes in a gateway cluster: to the node's session on this
/// replica, through the peer link to the replica that holds it, or nowhere. Decisions, not
/// actions: the gateway feeds it what it knows (its own session, the store's presence record)
/// and the time, and carries out the answer. Policy and audit are decided before, at the
/// operator's replica, whichever route is taken.
enum StreamRoute: Equatable {
    /// This replica holds the node's live session.
    case local
    /// Another replica holds it: relay through the peer link to `replica` at `address`.
    case peer(replica: String, address: String)
    /// Nobody holds it, as far as this replica can tell; `reason` is the operator's sentence.
    case offline(reason: String)

    /// - Parameters:
    ///   - localSession: the epoch of the live session this replica holds for the node, if any.
    ///   - presence: the store's record of the node, if any.
    ///   - replica: this replica's name.
    ///   - peerReachable: whether a peer link to `presence.replica` can be used now (not in its
    ///     reconnect backoff).
    static func decide(
        localSession: Int64?, presence: NodePresence?, replica: String, peerReachable: (String) -> Bool, now: Int64
    ) -> StreamRoute {
        let live = presence.flatMap { $0.leaseExpires > now ? $0 : nil }
        if let localSession {
            // A newer session elsewhere has fenced ours: it is closing, and the stream goes there.
            guard let live, live.replica != replica, live.epoch > localSession else { return .local }
            return route(to: live, peerReachable: peerReachable)
        }
        guard let live else { return .offline(reason: "no replica holds a live session of the node") }
        guard live.replica != replica else {
            // Our own record outlived our session (it ended and the record is not cleared yet).
            return .offline(reason: "the node's session on this replica has ended")
        }
        return route(to: live, peerReachable: peerReachable)
    }

    private static func route(to presence: NodePresence, peerReachable: (String) -> Bool) -> StreamRoute {
        guard peerReachable(presence.replica) else {
            return .offline(
                reason: "the node is held by replica \(presence.replica), which this replica cannot reach now")
        }
        return .peer(replica: presence.replica, address: presence.advertise)
    }
}

/// What the store says a replica holds: a node's session there, its epoch (a newer session
/// fences an older one) and the lease the holder renews.
public struct NodePresence: Equatable, Sendable {
    public let replica: String
    /// Where the other replicas dial the holder (its `--advertise`).
    public let advertise: String
    public let epoch: Int64
    /// Unix seconds: past it, the holder is presumed dead and the record is not trusted.
    public let leaseExpires: Int64

    public init(replica: String, advertise: String, epoch: Int64, leaseExpires: Int64) {
        self.replica = replica
        self.advertise = advertise
        self.epoch = epoch
        self.leaseExpires = leaseExpires
    }
}
