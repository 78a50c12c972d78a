/// How many stream records (opens and denials) each operator may put in the audit log: up to
/// `streamRecordsPerOperatorPerMinute` one by one; beyond that a stream is not opened (no
/// stream may open unrecorded) and denials are only counted, into one summary per operator per
/// interval. So the audit log grows by a bounded amount per operator, however fast one asks.
struct StreamRecordBudget {
    private var rate: RateLimiter<String>
    private var unrecorded: RefusalCounter

    init(limits: AdmissionLimits, now: UInt64) {
        rate = RateLimiter(perMinute: limits.streamRecordsPerOperatorPerMinute)
        unrecorded = RefusalCounter(intervalMilliseconds: limits.refusalIntervalMilliseconds, now: now)
    }

    /// Whether this request of `operatorName` may be recorded one by one.
    mutating func mayRecord(_ operatorName: String, now: UInt64) -> Bool {
        rate.allow(operatorName, now: now)
    }

    /// A request that was not recorded one by one, counted by outcome instead.
    mutating func count(_ operatorName: String, outcome: String) {
        unrecorded.count(operatorName, reason: outcome)
    }

    mutating func takeSummaries(now: UInt64, force: Bool = false) -> [RefusalCounter.Summary] {
        unrecorded.takeSummaries(now: now, force: force)
    }
}
