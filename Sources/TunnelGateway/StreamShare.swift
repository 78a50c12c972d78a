/// Each operator's share of a node's streams: no operator may hold more than
/// `streamsPerOperatorPerNode` of one node's streams, and the last `adminReservedStreamsPerNode`
/// of a node's streams are for admins only, so one operator (or all of them together) can never
/// lock an admin out of a node. Decisions, not actions: the `Gateway` refuses what it is told.
struct StreamShare {
    enum Decision: Equatable {
        case admit
        /// The node has no stream left for this operator: `open` streams are open on it.
        case nodeBusy(open: Int)
        /// This operator already holds `open` of the node's streams, its whole budget.
        case operatorBudget(open: Int)
    }

    let limits: AdmissionLimits
    /// Open streams per node, per operator.
    private var open: [String: [String: Int]] = [:]

    init(limits: AdmissionLimits) {
        self.limits = limits
    }

    func openStreams(on node: String) -> Int {
        open[node]?.values.reduce(0, +) ?? 0
    }

    /// Whether `operatorName` may open one more stream to `node`, which accepts `nodeCapacity`
    /// streams at once. Admins are held only to the node's capacity.
    func decide(node: String, operatorName: String, isAdmin: Bool, nodeCapacity: Int) -> Decision {
        let total = openStreams(on: node)
        let available = isAdmin ? nodeCapacity : nodeCapacity - limits.adminReservedStreamsPerNode
        guard total < available else { return .nodeBusy(open: total) }
        let mine = open[node]?[operatorName] ?? 0
        guard isAdmin || mine < limits.streamsPerOperatorPerNode else { return .operatorBudget(open: mine) }
        return .admit
    }

    mutating func opened(node: String, operatorName: String) {
        open[node, default: [:]][operatorName, default: 0] += 1
    }

    mutating func closed(node: String, operatorName: String) {
        guard let count = open[node]?[operatorName] else { return }
        open[node]?[operatorName] = count > 1 ? count - 1 : nil
        if open[node]?.isEmpty == true { open[node] = nil }
    }
}

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
