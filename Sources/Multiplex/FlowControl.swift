/// Credit to send, granted by the peer: its initial window plus every window update since,
/// minus what we sent. 64-bit inside so no sum can wrap; the protocol caps it at 2^31−1.
struct SendCredit: Equatable {
    private(set) var available: Int64

    init(initial: UInt32) {
        available = Int64(initial)
    }

    /// Adds a peer's window update. A result above 2^31−1 is the peer's fault and closes the
    /// connection (`flow-control-error`): wrapping would let it grant itself negative credit.
    mutating func grant(_ increment: UInt32) throws(Failure) {
        let updated = available + Int64(increment)
        guard updated <= Limits.maxWindow else {
            throw Failure(.flowControlError, "window update of \(increment) raises credit to \(updated), above 2^31-1")
        }
        available = updated
    }

    mutating func spend(_ count: Int) {
        precondition(Int64(count) <= available, "sent beyond credit")
        available -= Int64(count)
    }
}

/// The receiving side's window: how many bytes the peer may still send, what the application
/// still holds, and when to return credit.
///
/// Rule for window updates: once the application has consumed at least half of the current
/// window since the last update, announce everything consumed. If that moment comes less than
/// two round trips after the previous update, the sender was limited by our window rather than
/// by the link or by our reader, so the window doubles (up to `maxWindow`, and as far as the
/// shared `WindowBudget` lends) and the extra is added to the same update. If it comes more than
/// `slowUpdate` (and eight round trips) after the previous one, the window holds more than two
/// seconds of what the reader takes, so it halves (not below its initial size), the difference
/// is withheld from the update and the loan goes back to the budget. A reader that stops
/// consuming sends no updates, so the sender stops and nothing here grows: memory held for a
/// stream never exceeds its window.
struct ReceiveWindow {
    /// The size the peer's credit returns to when everything received has been consumed.
    private(set) var window: Int64
    let initialWindow: Int64
    let maxWindow: Int64
    /// Lends window growth above `initialWindow`; nil lets a window grow to `maxWindow` alone.
    let budget: WindowBudget?
    /// Bytes the peer may still send before it must wait for an update.
    private(set) var peerCredit: Int64
    /// Bytes received and not yet consumed by the application.
    private(set) var unconsumed: Int64 = 0
    /// Bytes consumed but not yet returned to the peer.
    private(set) var pendingIncrement: Int64 = 0
    private var lastUpdateAt: Timestamp?

    /// An update this long after the previous one means the window is far larger than the path
    /// needs (two seconds of the reader's pace at least, against round trips well under one).
    static let slowUpdate: Duration = .seconds(1)

    init(initial: UInt32, max: UInt32, budget: WindowBudget? = nil) {
        window = Int64(initial)
        initialWindow = Int64(initial)
        maxWindow = Int64(Swift.max(initial, max))
        peerCredit = Int64(initial)
        self.budget = budget
    }

    /// Accounts for received bytes; more than the peer's credit is a connection error.
    mutating func receive(_ count: Int) throws(Failure) {
        guard Int64(count) <= peerCredit else {
            throw Failure(.flowControlError, "peer sent \(count) bytes with only \(peerCredit) bytes of credit")
        }
        peerCredit -= Int64(count)
        unconsumed += Int64(count)
    }

    /// The application delivered `count` bytes; more than it holds is clamped (never negative).
    mutating func consume(_ count: Int) {
        let taken = Swift.min(Int64(count), unconsumed)
        unconsumed -= taken
        pendingIncrement += taken
    }

    /// Whether enough was consumed that an update should be sent.
    var wantsUpdate: Bool { pendingIncrement > 0 && pendingIncrement * 2 >= window }

    /// Takes the increment to announce now, resizing the window by the rule above.
    /// `roundTrip` is nil until the first ping has been answered; without it the window stays.
    mutating func takeUpdate(now: Timestamp, roundTrip: Duration?) -> UInt32? {
        guard pendingIncrement > 0 else { return nil }
        var increment = pendingIncrement
        if let last = lastUpdateAt, let roundTrip, roundTrip > .zero {
            let interval = now.since(last)
            if interval < roundTrip * 2 {
                increment += grow()
            } else if interval > Swift.max(Self.slowUpdate, roundTrip * 8) {
                increment -= shrink(byAtMost: increment)
            }
        }
        lastUpdateAt = now
        pendingIncrement = 0
        peerCredit += increment
        return increment > 0 ? UInt32(increment) : nil
    }

    /// Doubles the window as far as the ceiling and the budget allow; returns the growth.
    private mutating func grow() -> Int64 {
        let wanted = Swift.min(window * 2, maxWindow) - window
        let granted = budget?.borrow(upTo: wanted) ?? wanted
        window += granted
        return granted
    }

    /// Halves the window, not below its initial size nor by more than `limit` (credit already
    /// granted cannot be taken back); returns the reduction, now back in the budget.
    private mutating func shrink(byAtMost limit: Int64) -> Int64 {
        let reduction = Swift.min(window - Swift.max(window / 2, initialWindow), limit)
        guard reduction > 0 else { return 0 }
        window -= reduction
        budget?.giveBack(reduction)
        return reduction
    }

    /// Gives the window's loan back to the budget: the stream is gone.
    func release() {
        budget?.giveBack(window - initialWindow)
    }
}
