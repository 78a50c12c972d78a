/// A token bucket for requests on one connection: `burst` at once, then `perSecond`. kubectl
/// sends a handful of discovery requests and then one per command; a flood on one stream is a
/// client gone wrong or an attempt to load the API server through the node.
public struct RequestRate: Sendable {
    public static let perSecond = 50
    public static let burst = 100

    private var tokens = Double(RequestRate.burst)
    private var last: UInt64?

    public init() {}

    /// Takes a token at `now` (milliseconds, any monotonic origin); false when there is none.
    public mutating func admit(now: UInt64) -> Bool {
        if let last, now > last {
            tokens = min(Double(Self.burst), tokens + Double(now - last) * Double(Self.perSecond) / 1000)
        }
        last = max(last ?? now, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
