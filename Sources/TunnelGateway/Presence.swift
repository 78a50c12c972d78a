/// A replica's side of cluster presence (docs/CLUSTER.md): which node sessions it holds in the
/// shared store under which epoch, when its leases need renewing, and which sessions a newer
/// session elsewhere has superseded.
///
/// Decisions only: it takes events and `now` (seconds since 1970) and says what to claim,
/// renew, release or close; `ClusterSync` makes the store calls and closes the sessions.
struct PresenceLedger {
    /// How long a claim or renewal holds a node. A dead replica's nodes show offline after at
    /// most this long, and its nodes' new sessions elsewhere never wait for it.
    static let leaseSeconds: Int64 = 15
    /// How often leases are renewed: three renewals per lease, so one slow or failed round
    /// trip to the store does not let a live session's lease lapse.
    static let renewSeconds: Int64 = 5

    /// What the ledger knows of one local node session.
    enum Claim: Equatable {
        /// Not recorded in the store yet (the store was unreachable): claimed at the next tick.
        case pending
        /// Recorded under this epoch.
        case held(epoch: Int64)
    }

    private(set) var sessions: [String: Claim] = [:]
    /// When the leases were last renewed (or first due); nil before the first tick.
    private var nextRenewal: Int64?

    /// The lease end a claim or renewal made at `now` asks for.
    func leaseEnd(now: Int64) -> Int64 { now + Self.leaseSeconds }

    /// A node session started here; the caller claims it (`claimed` or `claimFailed` follows).
    /// A newer local session of the same node replaces the older one's claim.
    mutating func sessionStarted(node: String) {
        sessions[node] = .pending
    }

    mutating func claimed(node: String, epoch: Int64) {
        guard sessions[node] != nil else { return }
        sessions[node] = .held(epoch: epoch)
    }

    /// The session ended; returns the epoch to release, if it was recorded.
    mutating func sessionEnded(node: String) -> Int64? {
        guard case .held(let epoch) = sessions.removeValue(forKey: node) else { return nil }
        return epoch
    }

    /// Sessions whose claim did not reach the store; the caller claims them again.
    var unclaimed: [String] {
        sessions.filter { $0.value == .pending }.map(\.key).sorted()
    }

    /// True when the leases are due for renewal at `now` (and then not again for `renewSeconds`).
    mutating func renewalDue(now: Int64) -> Bool {
        guard let due = nextRenewal, now < due else {
            nextRenewal = now + Self.renewSeconds
            return true
        }
        return false
    }

    /// What a renewal found: sessions to close, and leases to end.
    struct RenewalOutcome: Equatable {
        /// Local sessions a newer session elsewhere superseded: close them (fencing). Their
        /// claims are forgotten, so closing them releases nothing.
        var superseded: [String] = []
        /// Leases the store still holds for this replica with no local session behind them (a
        /// release that failed while the store was unreachable): release them now.
        var orphaned: [String: Int64] = [:]
    }

    /// The store's answer to a renewal: what this replica still holds there (node → epoch).
    mutating func renewed(stillHeld: [String: Int64]) -> RenewalOutcome {
        var outcome = RenewalOutcome()
        for (node, claim) in sessions {
            guard case .held(let epoch) = claim, stillHeld[node] != epoch else { continue }
            outcome.superseded.append(node)
            sessions[node] = nil
        }
        outcome.superseded.sort()
        for (node, epoch) in stillHeld where sessions[node] == nil && !outcome.superseded.contains(node) {
            outcome.orphaned[node] = epoch
        }
        return outcome
    }
}
