/// Full-jitter exponential backoff: the n-th retry waits a uniformly random time between zero and
/// `min(cap, base × 2^n)`. The randomness spreads a fleet that lost the gateway at the same moment,
/// so its return is not a synchronized stampede.
public struct Backoff: Sendable {
    public let base: Duration
    public let cap: Duration
    public private(set) var attempt = 0

    public init(base: Duration = .milliseconds(500), cap: Duration = .seconds(30)) {
        self.base = base
        self.cap = cap
    }

    /// The delay before the next attempt; each call widens the range until it reaches `cap`.
    public mutating func nextDelay<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Duration {
        let ceiling = min(cap, base * (1 << min(attempt, 20)))
        attempt += 1
        let fraction = Double.random(in: 0...1, using: &generator)
        return ceiling * fraction
    }

    public mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    /// A connection worked: the next failure starts from the smallest delay again.
    public mutating func reset() {
        attempt = 0
    }
}
