/// Jittered exponential backoff: the n-th retry waits a uniformly random time between
/// `floor × ceiling` and `ceiling = min(cap, base × 2^n)`. With the default floor of 0 (full
/// jitter) the randomness spreads a fleet that lost the gateway at the same moment, so its return
/// is not a synchronized stampede; a floor above 0 guarantees each wait really grows, for retries
/// that must slow down (two machines taking one node's session from each other).
public struct Backoff: Sendable {
    public let base: Duration
    public let cap: Duration
    /// The least fraction of the ceiling a wait lasts, 0 to 1.
    public let floor: Double
    public private(set) var attempt = 0

    public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(30), floor: Double = 0) {
        self.base = base
        self.cap = cap
        self.floor = min(max(floor, 0), 1)
    }

    /// The delay before the next attempt; each call widens the range until it reaches `cap`.
    public mutating func nextDelay<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Duration {
        let ceiling = min(cap, base * (1 << min(attempt, 20)))
        attempt += 1
        let fraction = Double.random(in: floor...1, using: &generator)
        return ceiling * fraction
    }

    public mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    /// A connection worked: the next failure starts from the smallest delay again, or from the
    /// `attempt`-th one where successes that did not last still count (`ReconnectSchedule`).
    public mutating func reset(toAttempt attempt: Int = 0) {
        self.attempt = max(attempt, 0)
    }
}
