/// Counts refusals per key (a source address, an operator) and reason over an interval, so the
/// audit log gets one summary per key per interval instead of one record per refusal: a peer
/// refused at full speed must not be able to fill the gateway's disk. Sans-IO: the caller
/// passes `now` (milliseconds) and writes the summaries it is handed.
struct RefusalCounter {
    /// One key's refusals in one interval.
    struct Summary: Equatable {
        /// The key, or `RefusalCounter.otherKeys` for keys beyond `maximumKeys`.
        var key: String
        var counts: [String: Int]
        /// Keys folded into this summary (1 unless it is the overflow summary).
        var keys: Int
        var since: UInt64
        var until: UInt64
    }

    /// The key of the summary that collects keys beyond `maximumKeys`.
    static let otherKeys = "*"

    let intervalMilliseconds: UInt64
    let maximumKeys: Int
    private var counts: [String: [String: Int]] = [:]
    private var overflowKeys: Set<String> = []
    private var overflowCounts: [String: Int] = [:]
    private var intervalStart: UInt64
    /// Refusals by reason since the start, never reset (the metrics' running totals).
    private(set) var totals: [String: Int] = [:]

    init(intervalMilliseconds: UInt64, maximumKeys: Int = 1024, now: UInt64) {
        self.intervalMilliseconds = max(1, intervalMilliseconds)
        self.maximumKeys = maximumKeys
        intervalStart = now
    }

    var isEmpty: Bool { counts.isEmpty && overflowCounts.isEmpty }

    mutating func count(_ key: String, reason: String) {
        totals[reason, default: 0] += 1
        if counts[key] != nil || counts.count < maximumKeys {
            counts[key, default: [:]][reason, default: 0] += 1
        } else {
            // Only how many distinct keys overflowed is kept, up to a bound, not the keys.
            if overflowKeys.count < maximumKeys { overflowKeys.insert(key) }
            overflowCounts[reason, default: 0] += 1
        }
    }

    /// The summaries of the interval that ended, once it has; empty before that. `force` ends
    /// the interval now (at shutdown, so no count is lost).
    mutating func takeSummaries(now: UInt64, force: Bool = false) -> [Summary] {
        guard force || now >= intervalStart + intervalMilliseconds else { return [] }
        var summaries = counts.keys.sorted().map {
            Summary(key: $0, counts: counts[$0]!, keys: 1, since: intervalStart, until: now)
        }
        if !overflowCounts.isEmpty {
            summaries.append(
                Summary(
                    key: Self.otherKeys, counts: overflowCounts, keys: overflowKeys.count, since: intervalStart,
                    until: now))
        }
        counts = [:]
        overflowKeys = []
        overflowCounts = [:]
        intervalStart = now
        return summaries
    }
}
