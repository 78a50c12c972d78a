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
    /// it (`handshakeStarted`).
    mutating func helloRead(_ id: ID, priority: HandshakeQueue<ID>.Priority, now: UInt64) -> Place {
        guard let entry = greeting.remove(id) else { return .refuse }
        // Deadlines count from the accept, so a slow ClientHello does not extend them.
        return handshakePlace(id, source: entry.source, priority: priority, since: entry.since)
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
        return handshakePlace(id, source: source, priority: priority, since: now)
    }

    /// A place among the pending handshakes. Operator claims may hold `operatorReservedHandshakes`
    /// places and no more; the places of that share they do not hold are kept from everyone else.
    private mutating func handshakePlace(
        _ id: ID, source: String, priority: HandshakeQueue<ID>.Priority, since: UInt64
    ) -> Place {
        let decision: Place
        if priority == .operator, operatorClaims.count >= max(1, limits.operatorReservedHandshakes) {
            decision = operatorPlace(for: source)
        } else {
            let reserved = priority == .operator ? 0 : max(0, limits.operatorReservedHandshakes - operatorClaims.count)
            decision = place(
                in: pending, for: source, limit: pending.total - reserved, evicted: .handshakeEvicted,
                refused: .handshakeCap)
        }
        if case .admit = decision {
            pending.insert(id, source: source, now: since)
            if priority == .operator { operatorClaims.insert(id) }
        }
        return decision
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
        for id in expired { greeting.remove(id) }
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
        greeting.remove(id)
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

    @discardableResult
    private mutating func leavePending(_ id: ID) -> (source: String, since: UInt64)? {
        operatorClaims.remove(id)
        return pending.remove(id)
    }

    private mutating func dropped(_ id: ID, reason: Reason, source: String) {
        greeting.remove(id)
        leavePending(id)
        enrolling.remove(id)
        served.remove(id)
        refusals.count(source, reason: reason.rawValue)
    }
}
