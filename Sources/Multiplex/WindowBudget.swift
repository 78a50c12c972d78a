import Synchronization

/// Receive-window growth that many sessions share: a gateway relays hundreds of streams, and
/// every byte a stream's window lets its peer send may sit in the gateway until the other side
/// takes it. Each stream starts with its initial window for free; growing past it (auto-tuning,
/// see `ReceiveWindow`) borrows from this budget, and the stream gives the loan back when its
/// window shrinks or it closes. So what all streams may hold at once is their initial windows
/// plus `capacity`, however many of them are busy, and a lone bulk stream still grows as far as
/// the budget lets it.
///
/// Sendable through an atomic, so one budget can serve the sessions of several loops.
public final class WindowBudget: Sendable {
    /// Bytes of window growth all streams together may hold.
    public let capacity: Int64
    private let lent = Atomic<Int64>(0)

    public init(capacity: Int64) {
        self.capacity = max(capacity, 0)
    }

    /// Bytes on loan now.
    public var borrowed: Int64 { lent.load(ordering: .relaxed) }

    /// Lends up to `wanted` bytes, as much as is left; returns what it lent.
    func borrow(upTo wanted: Int64) -> Int64 {
        guard wanted > 0 else { return 0 }
        var current = lent.load(ordering: .relaxed)
        while true {
            let granted = min(wanted, capacity - current)
            guard granted > 0 else { return 0 }
            let (exchanged, original) = lent.compareExchange(
                expected: current, desired: current + granted, ordering: .relaxed)
            if exchanged { return granted }
            current = original
        }
    }

    /// Takes back bytes lent earlier.
    func giveBack(_ count: Int64) {
        guard count > 0 else { return }
        lent.subtract(count, ordering: .relaxed)
    }
}
