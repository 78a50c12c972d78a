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
/// by the link or by our reader, so the window doubles (up to `maxWindow`) and the extra is added
/// to the same update. A reader that stops consuming sends no updates, so the sender stops and
/// nothing here grows: memory held for a stream never exceeds its window.
struct ReceiveWindow: Equatable {
    /// The size the peer's credit returns to when everything received has been consumed.
    private(set) var window: Int64
    let maxWindow: Int64
    /// Bytes the peer may still send before it must wait for an update.
    private(set) var peerCredit: Int64
    /// Bytes received and not yet consumed by the application.
    private(set) var unconsumed: Int64 = 0
    /// Bytes consumed but not yet returned to the peer.
    private(set) var pendingIncrement: Int64 = 0
    private var lastUpdateAt: Timestamp?

    init(initial: UInt32, max: UInt32) {
        window = Int64(initial)
        maxWindow = Int64(Swift.max(initial, max))
        peerCredit = Int64(initial)
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

    /// Takes the increment to announce now, growing the window when the sender was window-limited.
    /// `roundTrip` is nil until the first ping has been answered; without it the window stays.
    mutating func takeUpdate(now: Timestamp, roundTrip: Duration?) -> UInt32? {
        guard pendingIncrement > 0 else { return nil }
        var increment = pendingIncrement
        if let last = lastUpdateAt, let roundTrip, roundTrip > .zero, window < maxWindow,
            now.since(last) < roundTrip * 2
        {
            let grown = Swift.min(window * 2, maxWindow)
            increment += grown - window
            window = grown
        }
        lastUpdateAt = now
        pendingIncrement = 0
        peerCredit += increment
        return UInt32(increment)
    }
}
