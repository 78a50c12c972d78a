/// A point on the owner's monotonic clock, in nanoseconds.
///
/// The protocol core never reads a clock: every input carries the owner's `now`, so tests can
/// drive a session on a virtual clock and the core stays deterministic.
public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    public static let zero = Timestamp(nanoseconds: 0)

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// Saturating addition, so a huge configured interval cannot wrap into the past.
    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.wholeNanoseconds)
        return Timestamp(nanoseconds: overflow ? .max : sum)
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    public func since(_ earlier: Timestamp) -> Duration {
        nanoseconds > earlier.nanoseconds
            ? .nanoseconds(Int64(clamping: nanoseconds - earlier.nanoseconds)) : .zero
    }

    public var description: String { "\(nanoseconds)ns" }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to the `UInt64` range (negative becomes zero).
    package var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        // A negative duration under a second has seconds 0 and negative attoseconds.
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (fromSeconds, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return fromSeconds &+ UInt64(attoseconds / 1_000_000_000)
    }

    /// The duration in whole milliseconds (the fraction of a second kept, below a millisecond
    /// dropped), clamped like `wholeNanoseconds`: the one conversion for libuv timers and the
    /// millisecond clocks of the sans-IO decisions.
    package var wholeMilliseconds: UInt64 {
        wholeNanoseconds / 1_000_000
    }
}
