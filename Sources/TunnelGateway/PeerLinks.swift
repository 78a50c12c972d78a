import TunnelEdgeCore
import TunnelRuntime

/// The state of this replica's peer links, one per other replica: whether a stream may use a
/// link now, whether to dial one, and when to try again after a failure. Decisions, not actions:
/// the gateway dials, hands streams to a link and reports what happened, passing the loop's
/// milliseconds (`now`). Bounded by the number of replicas the store names (`maxPeers`).
struct PeerLinks<Link> {
    enum State {
        /// No link and no reason to wait: the next stream dials one.
        case idle
        /// A dial is under way; streams wait for it (at most `dialTimeout`).
        case dialing(since: UInt64)
        case up(Link)
        /// The last dial or link failed; no new dial before `until`.
        case backingOff(until: UInt64)
    }

    /// What a stream to a peer replica does now.
    enum Use {
        case send(Link)
        /// Dial `address` (the peer's `--advertise`), then call `dialed` or `failed`.
        case dial(address: String)
        /// Wait for the dial under way.
        case wait
        /// The peer is not reachable now; `retryAt` is when a new dial may be made.
        case unavailable(retryAt: UInt64)
    }

    /// Replicas at most: the store's list is input from a database, so the table does not grow
    /// past what a cluster can plausibly hold.
    static var maxPeers: Int { 64 }
    let dialTimeout: UInt64
    private var states: [String: State] = [:]
    private var backoffs: [String: Backoff] = [:]

    init(dialTimeout: UInt64 = 10_000) {
        self.dialTimeout = dialTimeout
    }

    func state(of replica: String) -> State { states[replica] ?? .idle }

    /// Links up now (for the metrics).
    var upCount: Int { states.values.filter { if case .up = $0 { true } else { false } }.count }

    /// Whether a stream may reach `replica` now (for `StreamRoute.decide`'s `peerReachable`).
    func isReachable(_ replica: String, now: UInt64) -> Bool {
        if case .unavailable = decision(for: replica, now: now) { return false }
        return true
    }

    /// A stream wants `replica` at `address`: the link, a dial to make (now marked under way), a
    /// wait, or why not.
    mutating func use(_ replica: String, address: String, now: UInt64) -> Use {
        let use = decision(for: replica, now: now)
        guard case .dial = use else { return use }
        states[replica] = .dialing(since: now)
        return .dial(address: address)
    }

    /// `use` without changing anything (a `.dial` carries no address here).
    private func decision(for replica: String, now: UInt64) -> Use {
        switch state(of: replica) {
        case .up(let link): return .send(link)
        case .dialing(let since) where now < since + dialTimeout: return .wait
        case .backingOff(let until) where now < until: return .unavailable(retryAt: until)
        case .idle where states.count >= Self.maxPeers: return .unavailable(retryAt: now + dialTimeout)
        // A dial that outlived its timeout is given up on; the IO side closes it.
        case .idle, .dialing, .backingOff: return .dial(address: "")
        }
    }

    /// The dial to `replica` gave a link with a verified peer identity.
    mutating func dialed(_ replica: String, link: Link) {
        states[replica] = .up(link)
        backoffs[replica, default: Self.backoff()].reset()
    }

    /// A dial or a live link to `replica` failed: back off, each time longer (jittered).
    mutating func failed(_ replica: String, now: UInt64) {
        var backoff = backoffs[replica, default: Self.backoff()]
        let delay = backoff.nextDelay()
        backoffs[replica] = backoff
        let milliseconds =
            UInt64(delay.components.seconds) * 1000 + UInt64(delay.components.attoseconds / 1_000_000_000_000_000)
        states[replica] = .backingOff(until: now + milliseconds)
    }

    /// `replica` left the cluster (its presence and leases are gone): forget it.
    mutating func forget(_ replica: String) {
        states[replica] = nil
        backoffs[replica] = nil
    }

    /// Grows from half a second to 30 s, never below half the ceiling, so a peer that is down
    /// is not dialed for every stream.
    private static func backoff() -> Backoff { Backoff(base: .milliseconds(500), cap: .seconds(30), floor: 0.5) }
}
