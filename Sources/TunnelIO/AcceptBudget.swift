/// How many connections a listener takes in from the kernel's accept queue in one loop turn.
/// Each accepted connection costs its owner work in the same turn (a gateway reads its
/// ClientHello and makes its TLS state), and libuv on its own accepts until the queue is empty:
/// behind a reconnect storm that is thousands in one turn, while the streams of established
/// connections wait for the turn to end. With a budget, what is left stays queued in the kernel
/// (it costs nothing there) for the next turn.
///
/// Decisions, not actions: `TCPListener` asks before each accept and leaves the connection
/// queued when told no; tests drive it with their own clock (`now` in nanoseconds).
public struct AcceptBudget: Sendable, Equatable {
    /// Connections accepted per turn, at most.
    public let perTurn: Int
    /// Once this long has passed since the turn's first accept, the turn takes no more.
    public let turnNanoseconds: UInt64
    private var acceptedThisTurn = 0
    private var turnBegan: UInt64 = 0

    public init(perTurn: Int, turnNanoseconds: UInt64) {
        self.perTurn = max(1, perTurn)
        self.turnNanoseconds = turnNanoseconds
    }

    /// A connection is ready: true accepts it now (and counts it), false leaves it queued for
    /// the next turn. The first of a turn is always taken, so the queue never stalls.
    public mutating func mayAccept(now: UInt64) -> Bool {
        if acceptedThisTurn == 0 {
            turnBegan = now
        } else if acceptedThisTurn >= perTurn || now &- turnBegan >= turnNanoseconds {
            return false
        }
        acceptedThisTurn += 1
        return true
    }

    /// A new loop turn begins: the full budget again.
    public mutating func newTurn() {
        acceptedThisTurn = 0
    }
}
