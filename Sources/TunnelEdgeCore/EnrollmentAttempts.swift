/// When a node enrolling with a join token (`tunnel client --token`) tries again: a refusal
/// (a used, expired or unknown token; a gateway that fails the token's CA pin) is final, and any
/// other failure (the network, a gateway not up yet) waits as a lost session does, on the
/// node's own `ReconnectSchedule`, then tries again. Decisions, not actions, on the loop's
/// milliseconds like `EdgeCore`.
public struct EnrollmentAttempts {
    public enum Decision: Sendable, Equatable {
        case retry(afterMilliseconds: UInt64)
        case giveUp
    }

    private var schedule: ReconnectSchedule
    private var random: any RandomNumberGenerator

    public init(
        schedule: ReconnectSchedule = ReconnectSchedule(), random: any RandomNumberGenerator = SystemRandomSource()
    ) {
        self.schedule = schedule
        self.random = random
    }

    /// An attempt failed at `now`; `isFinal` when the gateway refused it for good.
    public mutating func failed(isFinal: Bool, now: UInt64) -> Decision {
        guard !isFinal else { return .giveUp }
        return .retry(afterMilliseconds: schedule.delayAfterLoss(now: now, using: &random).wholeMilliseconds)
    }
}
