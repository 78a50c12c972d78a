/// Which gateway replica a node dials next, and how long it waits first, when it knows several
/// (`tunnel client --gateway a:7443,b:7443`). Decisions, not actions: the client reports its
/// dials and sessions with the loop's milliseconds (`now`) and dials what it is told.
///
/// - Spread: each node starts at a random replica, so a fleet is spread over the list.
/// - Failover: a failed dial or a lost session moves to the next replica after a short jittered
///   wait (`failoverJitter`), so the nodes of a replica that died spread over the others instead
///   of arriving at one of them at the same instant.
/// - Backoff: once every replica failed in a row, the wait is the `schedule`'s, as with one
///   gateway. A session that lasted past the schedule's settle time starts the count over; one
///   that ended sooner (a flap) counts as a failure, so a cluster that accepts and drops at once
///   is not hammered either.
public struct GatewayRotation: Sendable {
    /// How many replicas the list has (at least 1).
    public let count: Int
    /// The replica to dial now, an index into the list.
    public private(set) var current: Int
    public private(set) var schedule: ReconnectSchedule
    /// The longest wait before trying the next replica while some of the round are untried.
    public let failoverJitter: UInt64
    /// Dials and sessions that failed in a row since the last settled session.
    public private(set) var failuresInRow = 0
    private var acceptedAt: UInt64?

    /// Entries at most in a `--gateway` list: a node dials them in turn, so a longer list only
    /// slows its return.
    public static let maxReplicas = 16

    /// - Parameter start: the first replica to dial; callers pass a random index to spread.
    public init(
        count: Int, start: Int, schedule: ReconnectSchedule = ReconnectSchedule(), failoverJitter: UInt64 = 1_000
    ) {
        precondition(count > 0, "a rotation needs at least one replica")
        self.count = count
        current = ((start % count) + count) % count
        self.schedule = schedule
        self.failoverJitter = failoverJitter
    }

    /// The replica `current` accepted the node at `now`.
    public mutating func accepted(now: UInt64) {
        acceptedAt = now
        schedule.accepted(now: now)
    }

    /// The dial to `current` or its session ended at `now`: moves on to the next replica and
    /// returns how many milliseconds to wait before dialing it.
    public mutating func failed<Generator: RandomNumberGenerator>(now: UInt64, using generator: inout Generator)
        -> UInt64
    {
        if let acceptedAt, now &- acceptedAt >= schedule.settleMilliseconds { failuresInRow = 0 }
        acceptedAt = nil
        failuresInRow += 1
        current = (current + 1) % count
        guard failuresInRow % count == 0 else {
            return UInt64.random(in: 0...failoverJitter, using: &generator)
        }
        return schedule.delayAfterLoss(now: now, using: &generator).wholeMilliseconds
    }
}

/// The system's generator with a stored field. Forwarding an inout `SystemRandomNumberGenerator`,
/// which has no storage, through two generic functions crashes ThreadSanitizer's access tracking
/// (Swift 6.3.1, SEGV in `failed(now:using:)`): the empty value's address is not one it can
/// shadow. The count of draws is what gives the value storage. `EdgeCore` keeps one for the
/// jitter of every wait it decides.
public struct SystemRandomSource: RandomNumberGenerator {
    private var system = SystemRandomNumberGenerator()
    private var drawn: UInt64 = 0

    public init() {}

    public mutating func next() -> UInt64 {
        drawn &+= 1
        return system.next()
    }
}
