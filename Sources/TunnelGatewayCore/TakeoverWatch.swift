/// Notices one node identity flapping between machines: two boxes holding the same node key each
/// take the session from the other, over and over. The newest session still always wins (that
/// is what lets a rebooted node back in at once); this only tells the gateway's operators, and
/// the replaced client backs off on its own (`EdgeClientConfiguration.replacedBackoff`).
/// A decision only: the gateway logs and reports it.
package struct TakeoverWatch {
    /// This many takeovers within `windowMilliseconds` is flapping, not a reconnect.
    package static let flappingCount = 3
    package static let windowMilliseconds: UInt64 = 60_000

    /// Times of the recent takeovers, oldest first; never more than `flappingCount`.
    private var recent: [UInt64] = []
    private var lastWarningAt: UInt64?

    package init() {}

    /// A newer session replaced the live one at `now`. Returns the number of takeovers within
    /// the window when that is flapping and a warning is due (at most one per window), else nil.
    package mutating func recordTakeover(now: UInt64) -> Int? {
        recent.append(now)
        recent.removeAll { now &- $0 >= Self.windowMilliseconds }
        if recent.count > Self.flappingCount { recent.removeFirst(recent.count - Self.flappingCount) }
        guard recent.count >= Self.flappingCount else { return nil }
        if let last = lastWarningAt, now &- last < Self.windowMilliseconds { return nil }
        lastWarningAt = now
        return recent.count
    }

    /// Whether the node flapped within the window before `now`.
    package func isFlapping(now: UInt64) -> Bool {
        recent.filter { now &- $0 < Self.windowMilliseconds }.count >= Self.flappingCount
    }
}
