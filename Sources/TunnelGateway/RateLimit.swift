/// A token bucket on a caller's clock (milliseconds): `capacity` tokens, refilled at
/// `perMinute` a minute. Sans-IO: it never reads a clock, so tests drive it on a virtual one.
/// Counted in exact integers (a token is 60,000 units, a millisecond adds `perMinute` units),
/// so the count at which it refuses is exact however often it is asked.
struct TokenBucket: Equatable {
    private static let unitsPerToken: UInt64 = 60_000
    let capacity: Int
    let perMinute: Int
    private var units: UInt64
    private var updatedAt: UInt64

    /// A full bucket. A burst is ten seconds' worth of the rate (at least one), so a peer that
    /// has been quiet may do a short burst but never a minute's worth at once.
    init(perMinute: Int, now: UInt64) {
        self.perMinute = max(0, perMinute)
        capacity = Self.burst(perMinute: perMinute)
        units = UInt64(capacity) * Self.unitsPerToken
        updatedAt = now
    }

    /// The burst for a rate: ten seconds' worth, at least one.
    static func burst(perMinute: Int) -> Int { max(1, perMinute / 6) }

    private var fullUnits: UInt64 { UInt64(capacity) * Self.unitsPerToken }

    /// Whole tokens in the bucket now.
    var tokens: Int { Int(units / Self.unitsPerToken) }

    private mutating func refill(_ now: UInt64) {
        guard now > updatedAt else { return }
        let elapsed = min(now - updatedAt, fullUnits)
        units = min(fullUnits, units + elapsed * UInt64(perMinute))
        updatedAt = now
    }

    /// Takes one token if there is one.
    mutating func take(now: UInt64) -> Bool {
        refill(now)
        guard units >= Self.unitsPerToken else { return false }
        units -= Self.unitsPerToken
        return true
    }

    /// Gives back a token taken for something that turned out not to count.
    mutating func refund(now: UInt64) {
        refill(now)
        units = min(fullUnits, units + Self.unitsPerToken)
    }

    func isFull(now: UInt64) -> Bool {
        var copy = self
        copy.refill(now)
        return copy.units >= fullUnits
    }
}

/// One token bucket per key (a source address, an operator), with a bounded table: when it is
/// full, buckets that refilled completely are forgotten (they hold nothing a fresh one would not)
/// and, if that leaves it more than three quarters full, the least recently used down to three
/// quarters, so a peer with a million addresses costs a bounded amount of memory. A sweep walks
/// the table but frees a quarter of it, so a new key costs O(log n) amortized, not O(n): a
/// reconnect storm brings a new source per connection.
struct RateLimiter<Key: Hashable> {
    let perMinute: Int
    let maximumKeys: Int
    private var buckets: [Key: (bucket: TokenBucket, usedAt: UInt64)] = [:]

    init(perMinute: Int, maximumKeys: Int = 4096) {
        self.perMinute = perMinute
        self.maximumKeys = max(1, maximumKeys)
    }

    var trackedKeys: Int { buckets.count }

    /// Whether `key` may do one more thing now (and charges it if so).
    mutating func allow(_ key: Key, now: UInt64) -> Bool {
        if buckets[key] == nil, buckets.count >= maximumKeys { makeRoom(now: now) }
        var entry = buckets[key] ?? (TokenBucket(perMinute: perMinute, now: now), now)
        let allowed = entry.bucket.take(now: now)
        entry.usedAt = now
        buckets[key] = entry
        return allowed
    }

    mutating func refund(_ key: Key, now: UInt64) {
        buckets[key]?.bucket.refund(now: now)
    }

    private mutating func makeRoom(now: UInt64) {
        buckets = buckets.filter { !$0.value.bucket.isFull(now: now) }
        let kept = maximumKeys * 3 / 4
        guard buckets.count > kept else { return }
        let leastRecent = buckets.sorted { $0.value.usedAt < $1.value.usedAt }.prefix(buckets.count - kept)
        for (key, _) in leastRecent { buckets[key] = nil }
    }
}
