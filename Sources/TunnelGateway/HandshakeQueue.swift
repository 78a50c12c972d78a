/// Which TLS handshakes go ahead while many arrive at once (a reconnect storm): operators first,
/// then nodes that hold a certificate, then newcomers (enrollment), oldest first within each,
/// at most `perTurn` per loop turn, so the loop gets back to established sessions, an admin's
/// `tunnel nodes` and its streams between batches. A handshake waits after its ClientHello,
/// before any key exchange or signature (`TLSConnection.holdAtClientHello`), so waiting costs
/// almost nothing. The pending-handshake caps (`ConnectionAdmission`) bound how many wait.
///
/// Decisions, not actions: the `Gateway` resumes what `release` names; tests drive it on a
/// virtual clock (`now` in milliseconds).
struct HandshakeQueue<ID: Hashable> {
    enum Priority: Int, CaseIterable, Comparable {
        case `operator`
        case node
        case newcomer

        static func < (left: Self, right: Self) -> Bool { left.rawValue < right.rawValue }
    }

    /// Handshakes begun per loop turn; each costs about a millisecond or two of CPU.
    let perTurn: Int
    /// Oldest first per priority; entries of connections that closed meanwhile are skipped.
    private var queues: [Priority: Queue] = [:]
    /// Who waits now, and in which queue.
    private var waiting: [ID: Priority] = [:]
    private var waitingPerPriority: [Priority: Int] = [:]
    /// Released by `release` but not yet back at their ClientHello.
    private var released: Set<ID> = []
    private var begunThisTurn = 0
    /// The longest any released handshake waited, per priority (for the benchmark figures).
    private(set) var longestWait: [Priority: UInt64] = [:]

    /// An array with a moving head: popping is O(1), and the storage is compacted as it drains.
    private struct Queue {
        var entries: [(id: ID, since: UInt64)] = []
        var head = 0

        mutating func popFirst() -> (id: ID, since: UInt64)? {
            guard head < entries.count else { return nil }
            head += 1
            defer {
                if head == entries.count {
                    entries.removeAll(keepingCapacity: true)
                    head = 0
                } else if head >= 1_024, head * 2 >= entries.count {
                    entries.removeFirst(head)
                    head = 0
                }
            }
            return entries[head - 1]
        }
    }

    init(perTurn: Int) {
        self.perTurn = max(1, perTurn)
    }

    var waitingCount: Int { waiting.count }

    /// A ClientHello is in: true lets the handshake go on now, false holds it until `release`
    /// names it. With nobody of its priority or better waiting and room in this turn's budget,
    /// it goes on at once.
    mutating func arrived(_ id: ID, priority: Priority, now: UInt64) -> Bool {
        if released.remove(id) != nil { return true }
        let queuedAhead = Priority.allCases.contains { $0 <= priority && waitingPerPriority[$0, default: 0] > 0 }
        if !queuedAhead, begunThisTurn < perTurn {
            begunThisTurn += 1
            return true
        }
        waiting[id] = priority
        waitingPerPriority[priority, default: 0] += 1
        queues[priority, default: Queue()].entries.append((id, now))
        return false
    }

    /// A new loop turn: the handshakes to take up now, best first, within the budget.
    mutating func release(now: UInt64) -> [ID] {
        var chosen: [ID] = []
        for priority in Priority.allCases {
            while chosen.count < perTurn, let entry = queues[priority]?.popFirst() {
                guard waiting.removeValue(forKey: entry.id) != nil else { continue }
                waitingPerPriority[priority, default: 0] -= 1
                longestWait[priority] = max(longestWait[priority] ?? 0, now &- entry.since)
                chosen.append(entry.id)
            }
        }
        begunThisTurn = chosen.count
        released.formUnion(chosen)
        return chosen
    }

    /// The connection closed (its handshake failed, finished, or timed out while waiting).
    mutating func closed(_ id: ID) {
        released.remove(id)
        if let priority = waiting.removeValue(forKey: id) { waitingPerPriority[priority, default: 0] -= 1 }
    }
}
