/// When a node dials the gateway again after losing its session: a decision, not an action, so
/// it runs on a virtual clock in tests (`now` in milliseconds of the caller's monotonic clock).
///
/// The backoff starts over as soon as the gateway has accepted the node (its announcement was
/// accepted), not after a long session: a gateway that was only restarted is dialed again within
/// `backoff.base`, jittered so a whole fleet does not return in one instant. A session that ends
/// within `settle` of its acceptance is a flap, and flaps in a row widen the wait as failures
/// do, so a gateway that accepts and drops at once is not hammered.
public struct ReconnectSchedule: Sendable {
    public var backoff: Backoff
    /// A session shorter than this after its acceptance counts as a flap, in milliseconds.
    public var settleMilliseconds: UInt64
    private var acceptedAt: UInt64?
    /// Sessions in a row that ended within `settle` of being accepted.
    public private(set) var flaps = 0

    public init(backoff: Backoff = Backoff(), settleMilliseconds: UInt64 = 1_000) {
        self.backoff = backoff
        self.settleMilliseconds = settleMilliseconds
    }

    /// The gateway accepted the node at `now`: unless the session turns out a flap, the next
    /// loss starts from the shortest waits again.
    public mutating func accepted(now: UInt64) {
        acceptedAt = now
    }

    /// The session was lost, or a dial failed, at `now`: how long to wait before dialing again.
    public mutating func delayAfterLoss<Generator: RandomNumberGenerator>(now: UInt64, using generator: inout Generator)
        -> Duration
    {
        if let acceptedAt {
            flaps = now &- acceptedAt < settleMilliseconds ? flaps + 1 : 0
            backoff.reset(toAttempt: flaps)
        }
        acceptedAt = nil
        return backoff.nextDelay(using: &generator)
    }

    public mutating func delayAfterLoss(now: UInt64) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delayAfterLoss(now: now, using: &generator)
    }
}
