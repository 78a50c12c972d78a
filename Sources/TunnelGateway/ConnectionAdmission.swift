/// The gateway's decisions about connections before they authenticate: whether a source may
/// connect and, once its ClientHello says who it claims to be, start one more handshake (a share
/// of them kept for operators), which anonymous connections make room for a newcomer, whether an
/// enrollment request is served, which enrollment connections are past their deadline, and the
/// per-source refusal counts the audit log gets instead of one record per refusal.
///
/// Decisions, not actions: it never touches a socket or a clock. The `Gateway` closes what it is
/// told to close; tests drive it on a virtual clock (`now` in milliseconds).
struct ConnectionAdmission<ID: Hashable> {
    /// Why something was refused, as counted in the audit summary (a fixed set, never peer text).
    enum Reason: String, CaseIterable {
        /// More new connections from the source than `connectionsPerSourcePerMinute`.
        case connectionRate = "connection-rate"
        /// Dropped to make room under the pending-handshake caps for a lighter source.
        case handshakeEvicted = "handshake-evicted"
        /// Turned away after its ClientHello: the source holds the most handshakes, or its own
        /// cap, or only the operators' share is left.
        case handshakeCap = "handshake-cap"
        /// Dropped while awaiting its ClientHello to make room for a lighter source.
        case helloEvicted = "hello-evicted"
        /// Turned away at accept: the source holds the most connections awaiting their
        /// ClientHello, or its own cap.
        case helloCap = "hello-cap"
        /// Dropped to make room under the enrollment-connection caps for a lighter source.
        case enrollmentEvicted = "enrollment-evicted"
        /// Turned away after the handshake: the source holds the most enrollment connections.
        case enrollmentCap = "enrollment-cap"
        case enrollmentRate = "enrollment-rate"
        /// A second request on an enrollment connection, which serves one.
        case secondRequest = "second-request"
        /// An enrollment connection closed at its deadline.
        case deadline
        /// A field not in its documented format (a token id that is not 8 hex digits, say).
        case malformed
        /// The fleet authority refused the token (unknown, wrong secret, expired, used, name).
        case tokenRefused = "token-refused"
        case reenrollRefused = "reenroll-refused"
        /// An enrollment request that did not decode.
        case unreadable
    }

    /// Whether a connection gets a place, and which connection gives its place up.
    enum Place: Equatable {
        case admit(closing: ID?)
        /// Its ClientHello is in but every handshake place it may take is held: it waits in a
        /// hello place (the one it held, or one it now takes from `closing`) until `unpark`
        /// names it or its deadline passes. Waiting costs a socket and its hello; refused, a
        /// node would come back only after its backoff, which grows with every refusal.
        case wait(closing: ID?)
        case refuse
    }

    enum RequestDecision: Equatable {
        case serve
        case refuse(Reason)
    }

    let limits: AdmissionLimits
    /// Accepted, awaiting their ClientHello.
    private(set) var greeting: AnonymousPool<ID>
    /// Handshaking, after their ClientHello.
    private(set) var pending: AnonymousPool<ID>
    /// Of `pending`, those whose ClientHello offered the operator protocol (at most
    /// `operatorReservedHandshakes`, or one): anyone can claim it, so claims get no more than
    /// the share kept for operators, and nodes keep the rest.
    private(set) var operatorClaims: Set<ID> = []
    /// Of `greeting`, those whose hello is in, waiting for a handshake place: oldest first per
    /// priority (entries that left meanwhile are skipped), and the priority of each.
    private var parked: [HandshakeQueue<ID>.Priority: [ID]] = [:]
    private var parkedPriority: [ID: HandshakeQueue<ID>.Priority] = [:]
    private(set) var enrolling: AnonymousPool<ID>
    private var connectionRate: RateLimiter<String>
    private var enrollmentRate: RateLimiter<String>
    /// Enrollment connections that have had their one request.
    private var served: Set<ID> = []
    private var refusals: RefusalCounter

    init(limits: AdmissionLimits, now: UInt64) {
        self.limits = limits
        greeting = AnonymousPool(total: limits.helloWaits, perSource: limits.pendingHandshakesPerSource)
        pending = AnonymousPool(total: limits.pendingHandshakes, perSource: limits.pendingHandshakesPerSource)
        enrolling = AnonymousPool(total: limits.enrollmentConnections, perSource: limits.enrollmentConnectionsPerSource)
        connectionRate = RateLimiter(perMinute: limits.connectionsPerSourcePerMinute)
        enrollmentRate = RateLimiter(perMinute: limits.enrollmentsPerSourcePerMinute)
        refusals = RefusalCounter(intervalMilliseconds: limits.refusalIntervalMilliseconds, now: now)
    }

    /// A source connected: may it send its ClientHello, and whose place does it take? A refusal
    /// is counted; the caller closes the socket without a word, before reading a byte.
    mutating func mayConnect(from source: String, now: UInt64) -> Place {
        guard connectionRate.allow(source, now: now) else {
            refusals.count(source, reason: Reason.connectionRate.rawValue)
            return .refuse
        }
        return place(in: greeting, for: source, limit: greeting.total, evicted: .helloEvicted, refused: .helloCap)
    }

    /// The connection admitted by `mayConnect` awaits its ClientHello.
    mutating func awaitingHello(_ id: ID, source: String, now: UInt64) {
        greeting.insert(id, source: source, now: now)
    }

    /// The ClientHello of `id` is in, offering the protocol of `priority`: may its handshake
    /// start, and whose place does it take? Only operators may take the last
    /// `operatorReservedHandshakes` places. A refusal is counted; the caller closes the socket
    /// without a word, before any TLS work. Admitted, the caller starts the handshake and names
    /// it (`handshakeStarted`); told to wait, it keeps the socket until `unpark`.
    mutating func helloRead(_ id: ID, priority: HandshakeQueue<ID>.Priority, now: UInt64) -> Place {
        guard let entry = greeting.entries[id], parkedPriority[id] == nil else { return .refuse }
        let decision = handshakePlace(for: entry.source, priority: priority)
        switch decision {
        case .wait:
            park(id, priority: priority)
        case .admit:
            greeting.remove(id)
            // Deadlines count from the accept, so a slow ClientHello does not extend them.
            enterPending(id, source: entry.source, priority: priority, since: entry.since)
        case .refuse:
            greeting.remove(id)
        }
        return decision
    }

    /// A connection whose ClientHello was already waiting when it was accepted (it queued in
    /// the kernel behind a storm): it is decided at once, with no place awaiting its hello, so
    /// a full hello pool never turns away an operator whose hello says who it is. The source's
    /// connection rate is charged as in `mayConnect`.
    mutating func helloAtAccept(
        _ id: ID, source: String, priority: HandshakeQueue<ID>.Priority, now: UInt64
    ) -> Place {
        guard connectionRate.allow(source, now: now) else {
            refusals.count(source, reason: Reason.connectionRate.rawValue)
            return .refuse
        }
        switch handshakePlace(for: source, priority: priority) {
        case .admit(let closing):
            enterPending(id, source: source, priority: priority, since: now)
            return .admit(closing: closing)
        case .wait:
            let door = place(
                in: greeting, for: source, limit: greeting.total, evicted: .helloEvicted, refused: .helloCap)
            guard case .admit(let closing) = door else { return .refuse }
            greeting.insert(id, source: source, now: now)
            park(id, priority: priority)
            return .wait(closing: closing)
        case .refuse:
            return .refuse
        }
    }

    /// Connections waiting for a handshake place.
    var parkedCount: Int { parkedPriority.count }

    /// Handshake places came free: the waiting connections that take them now, best first
    /// (operators, then nodes, then newcomers; oldest first within each). Nobody is evicted
    /// for them. The caller starts their handshakes.
    mutating func unpark() -> [ID] {
        var admitted: [ID] = []
        for priority in HandshakeQueue<ID>.Priority.allCases {
            guard let queue = parked[priority], !queue.isEmpty else { continue }
            var kept: [ID] = []
            for (index, id) in queue.enumerated() {
                guard parkedPriority[id] == priority, let entry = greeting.entries[id] else { continue }
                guard pending.count < pendingLimit(for: priority) else {
                    kept.append(contentsOf: queue[index...].filter { parkedPriority[$0] == priority })
                    break
                }
                guard pending.count(from: entry.source) < pending.perSource else {
                    kept.append(id)
                    continue
                }
                greeting.remove(id)
                parkedPriority[id] = nil
                enterPending(id, source: entry.source, priority: priority, since: entry.since)
                admitted.append(id)
            }
            parked[priority] = kept
        }
        return admitted
    }

    private mutating func park(_ id: ID, priority: HandshakeQueue<ID>.Priority) {
        parkedPriority[id] = priority
        parked[priority, default: []].append(id)
        // Entries that left without an unpark are dropped now and then, so the queue stays
        // within twice the hello places.
        if let count = parked[priority]?.count, count > 2 * greeting.total {
            parked[priority]?.removeAll { parkedPriority[$0] != priority }
        }
    }

    /// How many pending handshakes a hello of `priority` may find and still take a place.
    private func pendingLimit(for priority: HandshakeQueue<ID>.Priority) -> Int {
        if priority == .operator {
            return operatorClaims.count >= operatorClaimCap ? 0 : pending.total
        }
        return pending.total - max(0, limits.operatorReservedHandshakes - operatorClaims.count)
    }

    private var operatorClaimCap: Int { max(1, limits.operatorReservedHandshakes) }

    private mutating func enterPending(
        _ id: ID, source: String, priority: HandshakeQueue<ID>.Priority, since: UInt64
    ) {
        pending.insert(id, source: source, now: since)
        if priority == .operator { operatorClaims.insert(id) }
    }

    /// A place among the pending handshakes. Operator claims may hold `operatorReservedHandshakes`
    /// places and no more; the places of that share they do not hold are kept from everyone else.
    /// With every place it may take held, a hello waits, unless its source holds its cap.
    private mutating func handshakePlace(for source: String, priority: HandshakeQueue<ID>.Priority) -> Place {
        if priority == .operator, operatorClaims.count >= operatorClaimCap {
            return operatorPlace(for: source)
        }
        switch pending.room(for: source, limit: pendingLimit(for: priority)) {
        case .free:
            return .admit(closing: nil)
        case .evict(let id, let owner):
            dropped(id, reason: .handshakeEvicted, source: owner)
            return .admit(closing: id)
        case .full:
            guard pending.count(from: source) >= pending.perSource else { return .wait(closing: nil) }
            refusals.count(source, reason: Reason.handshakeCap.rawValue)
            return .refuse
        }
    }

    /// With the operators' share full, an operator's hello takes the place of the oldest
    /// operator claim: an operator's handshake takes milliseconds, so the oldest is the likeliest
    /// to be a stalled impostor's, and impostors churning the share must outpace handshakes.
    private mutating func operatorPlace(for source: String) -> Place {
        let oldest = operatorClaims.min { (pending.entries[$0]?.since ?? 0) < (pending.entries[$1]?.since ?? 0) }
        guard pending.count(from: source) < pending.perSource, let oldest, let owner = pending.entries[oldest]?.source
        else {
            refusals.count(source, reason: Reason.handshakeCap.rawValue)
            return .refuse
        }
        dropped(oldest, reason: .handshakeEvicted, source: owner)
        return .admit(closing: oldest)
    }

    /// The handshake admitted for the ClientHello of `hello` goes on as connection `handshake`.
    mutating func handshakeStarted(_ handshake: ID, after hello: ID) {
        let claim = operatorClaims.remove(hello) != nil
        guard let entry = leavePending(hello) else { return }
        pending.insert(handshake, source: entry.source, now: entry.since)
        if claim { operatorClaims.insert(handshake) }
    }

    /// Connections whose ClientHello has not come within `timeout` milliseconds of their accept;
    /// they leave the caps now and the caller closes them.
    mutating func expiredHelloWaits(now: UInt64, timeout: UInt64) -> [ID] {
        let expired = greeting.entries.filter { $0.value.since + timeout <= now }.map(\.key)
        for id in expired { leaveGreeting(id) }
        return expired
    }

    /// The handshake proved a node or operator certificate: it leaves the anonymous caps, and
    /// its connection is not charged to its source's rate.
    mutating func authenticated(_ id: ID, now: UInt64) {
        guard let entry = leavePending(id) else { return }
        connectionRate.refund(entry.source, now: now)
    }

    /// The handshake chose enrollment: does it get a place, and whose?
    mutating func enrollmentStarted(_ id: ID, now: UInt64) -> Place {
        guard let entry = leavePending(id) else { return .refuse }
        let decision = place(
            in: enrolling, for: entry.source, limit: enrolling.total, evicted: .enrollmentEvicted,
            refused: .enrollmentCap)
        // The deadline counts from the accept, so a slow handshake does not extend it.
        if case .admit = decision { enrolling.insert(id, source: entry.source, now: entry.since) }
        return decision
    }

    private mutating func place(
        in pool: AnonymousPool<ID>, for source: String, limit: Int, evicted: Reason, refused: Reason
    ) -> Place {
        switch pool.room(for: source, limit: limit) {
        case .free:
            return .admit(closing: nil)
        case .evict(let id, let owner):
            dropped(id, reason: evicted, source: owner)
            return .admit(closing: id)
        case .full:
            refusals.count(source, reason: refused.rawValue)
            return .refuse
        }
    }

    /// An enrollment connection asks something: serve it, or refuse (counted here).
    mutating func enrollmentRequest(_ id: ID, now: UInt64) -> RequestDecision {
        guard let source = enrolling.entries[id]?.source else { return .refuse(.secondRequest) }
        let decision: RequestDecision
        if !served.insert(id).inserted {
            decision = .refuse(.secondRequest)
        } else if !enrollmentRate.allow(source, now: now) {
            decision = .refuse(.enrollmentRate)
        } else {
            return .serve
        }
        if case .refuse(let reason) = decision { refusals.count(source, reason: reason.rawValue) }
        return decision
    }

    /// A served enrollment request was refused for `reason`; it is counted, not recorded.
    mutating func enrollmentRefused(_ id: ID, reason: Reason) {
        guard let source = enrolling.entries[id]?.source else { return }
        refusals.count(source, reason: reason.rawValue)
    }

    /// Enrollment connections past their deadline; they leave the caps now and the caller
    /// closes them.
    mutating func expiredEnrollments(now: UInt64) -> [ID] {
        let deadline = limits.enrollmentDeadlineMilliseconds
        let expired = enrolling.entries.filter { $0.value.since + deadline <= now }
        for (id, entry) in expired { dropped(id, reason: .deadline, source: entry.source) }
        return Array(expired.keys)
    }

    mutating func closed(_ id: ID) {
        leaveGreeting(id)
        leavePending(id)
        enrolling.remove(id)
        served.remove(id)
    }

    /// Refusals by reason since the start (for the metrics).
    var refusalTotals: [String: Int] { refusals.totals }

    /// One summary per source that was refused anything in the interval just ended.
    mutating func takeRefusalSummaries(now: UInt64, force: Bool = false) -> [RefusalCounter.Summary] {
        refusals.takeSummaries(now: now, force: force)
    }

    private mutating func leaveGreeting(_ id: ID) {
        parkedPriority[id] = nil
        greeting.remove(id)
    }

    @discardableResult
    private mutating func leavePending(_ id: ID) -> (source: String, since: UInt64)? {
        operatorClaims.remove(id)
        return pending.remove(id)
    }

    private mutating func dropped(_ id: ID, reason: Reason, source: String) {
        leaveGreeting(id)
        leavePending(id)
        enrolling.remove(id)
        served.remove(id)
        refusals.count(source, reason: reason.rawValue)
    }
}
