import Multiplex

/// The resets the gateway passes on to one node on behalf of operators. The node's session
/// charges the gateway for every stream the gateway opened and then reset (the rapid-reset
/// pattern, `docs/PROTOCOL.md` §9), and the gateway opens them all for operators; so operators
/// together must not be able to spend the node's allowance and get its session closed for
/// everyone. Each operator's own rapid resets are also caught at its own connection; this is the
/// per-node sum. Once `limit` resets went to the node within one abuse window, an operator that
/// reset any of them is refused new streams to the node until the window ends, and one that reset
/// at least half of `limit` itself is disconnected; operators that reset none carry on.
/// Decisions only: `GatewayCore` refuses and disconnects, and the shell carries it out.
package struct RelayedResetBudget {
    package enum Decision: Equatable {
        case admit
        /// Refuse this stream; the operator reset streams to the node in this window.
        case refuse
        /// Close the operator's connection: it reset at least half the budget by itself.
        case disconnect
    }

    /// Resets per window before resetting operators are held off.
    let limit: Int
    private var windowEnd: UInt64?
    private var relayed = 0
    private var byOperator: [String: Int] = [:]

    /// A quarter of the node's allowance: our windows and the node's are not aligned, so one of
    /// its windows can straddle two of ours, and every stream in flight when the budget runs out
    /// (at most the node's stream cap) may still be reset; together that stays within it.
    package init(nodeAllowance: Int) {
        limit = max(2, nodeAllowance / 4)
    }

    private static let windowMilliseconds = Limits.abuseWindow.wholeMilliseconds

    private mutating func roll(_ now: UInt64) {
        if let end = windowEnd, now < end { return }
        windowEnd = now + Self.windowMilliseconds
        relayed = 0
        byOperator = [:]
    }

    /// An operator's stream to the node ended in a reset from the operator's side.
    package mutating func recordReset(by operatorName: String, now: UInt64) {
        roll(now)
        relayed += 1
        byOperator[operatorName, default: 0] += 1
    }

    /// Whether `operatorName` may open another stream to the node now.
    package mutating func decide(_ operatorName: String, now: UInt64) -> Decision {
        roll(now)
        guard relayed >= limit, let own = byOperator[operatorName] else { return .admit }
        return own * 2 >= limit ? .disconnect : .refuse
    }

    /// Milliseconds until the current window ends (for the refusal's sentence).
    package func remaining(now: UInt64) -> UInt64 {
        windowEnd.map { $0 > now ? $0 - now : 0 } ?? 0
    }
}
