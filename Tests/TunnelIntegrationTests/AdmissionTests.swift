import Testing
import TunnelRuntime

@testable import TunnelGateway

/// The admission decisions on a virtual clock (milliseconds): rates, caps, evictions,
/// deadlines, refusal summaries, and each operator's share of a node.
@Suite("Admission decisions")
struct AdmissionTests {
    typealias Admission = ConnectionAdmission<Int>

    /// A connection from `source` through both doors: accept, then its ClientHello offering the
    /// protocol of `priority` (operators may use the whole handshake pool).
    static func connect(
        _ admission: inout Admission, _ id: Int, from source: String, now: UInt64,
        as priority: HandshakeQueue<Int>.Priority = .operator
    ) -> Admission.Place {
        let door = admission.mayConnect(from: source, now: now)
        guard door == .admit(closing: nil) else { return door }
        admission.awaitingHello(id, source: source, now: now)
        return admission.helloRead(id, priority: priority, now: now)
    }

    @Test("a token bucket allows a burst of ten seconds' worth, then the rate, and refunds")
    func tokenBucket() {
        var bucket = TokenBucket(perMinute: 60, now: 0)
        var taken = 0
        for _ in 0..<10 where bucket.take(now: 0) { taken += 1 }
        #expect(taken == 10)
        let value1 = bucket.take(now: 0)
        #expect(!value1)
        let value2 = bucket.take(now: 999)
        #expect(!value2)
        let value3 = bucket.take(now: 1000)
        #expect(value3)
        bucket.refund(now: 1000)
        let value4 = bucket.take(now: 1000)
        #expect(value4)
        #expect(bucket.isFull(now: 1000 + 10_000))
    }

    @Test("the rate limiter's table stays bounded when every request comes from a new key")
    func rateLimiterTableIsBounded() {
        var limiter = RateLimiter<Int>(perMinute: 60, maximumKeys: 100)
        for key in 0..<10_000 { _ = limiter.allow(key, now: UInt64(key)) }
        #expect(limiter.trackedKeys <= 100)
        #expect(limiter.trackedKeys >= 75, "a sweep keeps the most recent three quarters")
        // A key charged to empty stays charged while it is tracked.
        for _ in 0..<10 { _ = limiter.allow(-1, now: 20_000) }
        let value5 = limiter.allow(-1, now: 20_000)
        #expect(!value5)
    }

    @Test("a source over its connection rate is refused, and an authenticated connection is given back")
    func connectionRate() {
        var limits = AdmissionLimits()
        limits.connectionsPerSourcePerMinute = 60
        var admission = Admission(limits: limits, now: 0)
        for id in 0..<10 {
            #expect(Self.connect(&admission, id, from: "198.51.100.7", now: 0) == .admit(closing: nil))
        }
        let overRate = admission.mayConnect(from: "198.51.100.7", now: 0)
        #expect(overRate == .refuse)
        let other = admission.mayConnect(from: "203.0.113.1", now: 0)
        #expect(other == .admit(closing: nil), "another source is not charged")
        admission.authenticated(0, now: 0)
        let refunded = admission.mayConnect(from: "198.51.100.7", now: 0)
        #expect(refunded == .admit(closing: nil), "an operator's connection costs its source nothing")
        let summary = admission.takeRefusalSummaries(now: 60_000)
        #expect(summary.map(\.key) == ["198.51.100.7"])
        #expect(summary.first?.counts == ["connection-rate": 1])
    }

    @Test("a flood fills only its share of the handshake caps; a lone source always finds a place")
    func handshakePlaces() {
        var limits = AdmissionLimits()
        // Ten places for nodes; the eleventh is the operators'.
        limits.pendingHandshakes = 11
        limits.pendingHandshakesPerSource = 6
        var admission = Admission(limits: limits, now: 0)
        func connect(_ id: Int, _ source: String) -> Admission.Place {
            Self.connect(&admission, id, from: source, now: UInt64(id), as: .node)
        }
        let flood = (0..<20).map { connect($0, "flood-a") }
        #expect(flood.filter { $0 == .admit(closing: nil) }.count == 6, "its own cap, then turned away")
        #expect(flood.filter { $0 == .refuse }.count == 14)
        // At the total cap flood-b takes flood-a's places until they hold as many each.
        let second = (20..<30).map { connect($0, "flood-b") }
        #expect(second.filter { $0 == .admit(closing: nil) }.count == 4)
        #expect(second.filter { $0 == .admit(closing: 0) }.count == 1)
        // Full: a newcomer from a light source takes the place of the heaviest's oldest.
        #expect(connect(100, "operator") == .admit(closing: 1))
        #expect(connect(101, "flood-b") == .wait(closing: nil), "flood-b holds the most now: it waits")
        #expect(admission.pending.contains(100))
        #expect(admission.pending.count == 10)
        let counts = admission.takeRefusalSummaries(now: 60_000).reduce(into: [String: [String: Int]]()) {
            $0[$1.key] = $1.counts
        }
        #expect(counts["flood-a"] == ["handshake-cap": 14, "handshake-evicted": 2])
    }

    @Test("where every source holds one handshake, a newcomer waits for a place, not given another's")
    func noEvictionAmongEquals() {
        var limits = AdmissionLimits()
        limits.pendingHandshakes = 10
        var admission = Admission(limits: limits, now: 0)
        for id in 0..<9 {
            #expect(Self.connect(&admission, id, from: "node-\(id)", now: 0, as: .node) == .admit(closing: nil))
        }
        // A reconnect storm of many addresses: evicting would swap places without progress, and
        // refusing would grow each node's backoff; they wait in their hello places instead.
        for id in 10..<100 {
            #expect(Self.connect(&admission, id, from: "node-\(id)", now: UInt64(id), as: .node) == .wait(closing: nil))
        }
        #expect((0..<9).allSatisfy { admission.pending.contains($0) }, "the first nine finish their handshakes")
        #expect(admission.parkedCount == 90 && admission.unpark().isEmpty)
        // The tenth place is the operators'.
        #expect(Self.connect(&admission, 9, from: "operator", now: 100) == .admit(closing: nil))
        // A source holding two is still made to give one up.
        admission.authenticated(9, now: 100)
        #expect(Self.connect(&admission, 200, from: "node-0", now: 100) == .admit(closing: nil))
        #expect(Self.connect(&admission, 201, from: "node-new", now: 101, as: .node) == .admit(closing: 0))
        // Places that come free go to the waiting nodes, oldest first; nobody is evicted for them.
        for id in [1, 2, 200] { admission.authenticated(id, now: 102) }
        #expect(admission.unpark() == [10, 11], "the operators' place stays free")
        #expect(admission.pending.contains(10) && admission.parkedCount == 88)
        admission.handshakeStarted(110, after: 10)
        #expect(admission.expiredHelloWaits(now: 10_050, timeout: 10_000).count == 39, "accepted at 12 to 50")
        #expect(admission.parkedCount == 49 && admission.pending.contains(110))
    }

    @Test("an eighth of the handshake places is kept for operators while a fleet reconnects")
    func operatorShare() {
        var limits = AdmissionLimits()
        limits.pendingHandshakes = 16
        var admission = Admission(limits: limits, now: 0)
        let storm = (0..<40).map { Self.connect(&admission, $0, from: "node-\($0)", now: 0, as: .node) }
        #expect(storm.filter { $0 == .admit(closing: nil) }.count == 14)
        #expect(Self.connect(&admission, 100, from: "admin", now: 1) == .admit(closing: nil))
        #expect(Self.connect(&admission, 101, from: "admin-2", now: 2) == .admit(closing: nil))
        // The share is two places: a third operator takes the place of the oldest claim.
        #expect(Self.connect(&admission, 102, from: "admin-3", now: 3) == .admit(closing: 100))
        #expect(Self.connect(&admission, 103, from: "newcomer", now: 1, as: .newcomer) == .wait(closing: nil))
        // Finished handshakes free places for the nodes again once the share is whole.
        for id in [101, 102] { admission.authenticated(id, now: 2) }
        #expect(Self.connect(&admission, 104, from: "node-40", now: 2, as: .node) == .wait(closing: nil))
        #expect(admission.unpark().isEmpty, "the free places are the operators'")
        admission.authenticated(0, now: 2)
        // The nodes that waited come before the newcomer, however long it waited.
        #expect(admission.unpark() == [14])
        #expect(admission.parkedCount == 26 + 1 + 1 - 1)
        let summaries = admission.takeRefusalSummaries(now: 60_000)
        #expect(summaries.map(\.key) == ["admin"] && summaries.first?.counts == ["handshake-evicted": 1], "nobody else")
    }

    @Test("a connection waits for its ClientHello in a pool of its own, evicted by lighter sources, until its deadline")
    func helloWaits() {
        var limits = AdmissionLimits()
        limits.helloWaits = 4
        var admission = Admission(limits: limits, now: 0)
        for id in 0..<3 {
            #expect(admission.mayConnect(from: "slow", now: UInt64(id)) == .admit(closing: nil))
            admission.awaitingHello(id, source: "slow", now: UInt64(id))
        }
        #expect(admission.mayConnect(from: "node-1", now: 3) == .admit(closing: nil))
        admission.awaitingHello(3, source: "node-1", now: 3)
        #expect(admission.mayConnect(from: "node-2", now: 4) == .admit(closing: 0), "the slow source's oldest goes")
        admission.awaitingHello(4, source: "node-2", now: 4)
        #expect(admission.mayConnect(from: "node-3", now: 5) == .admit(closing: 1))
        admission.awaitingHello(5, source: "node-3", now: 5)
        #expect(admission.mayConnect(from: "node-4", now: 6) == .refuse, "every source holds one now")
        // The hello of 3 is in: it moves to the handshakes and keeps its accept time.
        #expect(admission.helloRead(3, priority: .node, now: 7) == .admit(closing: nil))
        admission.handshakeStarted(30, after: 3)
        #expect(admission.pending.contains(30) && !admission.pending.contains(3))
        #expect(admission.greeting.count == 3)
        #expect(admission.helloRead(3, priority: .node, now: 7) == .refuse, "a hello is read once")
        let expired = admission.expiredHelloWaits(now: 10_004, timeout: 10_000).sorted()
        #expect(expired == [2, 4])
        #expect(admission.greeting.count == 1)
        admission.closed(5)
        admission.closed(30)
        #expect(admission.greeting.count == 0 && admission.pending.count == 0)
        let counts = admission.takeRefusalSummaries(now: 60_000).reduce(into: [String: [String: Int]]()) {
            $0[$1.key] = $1.counts
        }
        #expect(counts["slow"] == ["hello-evicted": 2])
        #expect(counts["node-4"] == ["hello-cap": 1])
    }

    @Test("the pool knows its heaviest source as places come and go, across thousands of sources")
    func heaviestSourceIsTracked() {
        var pool = AnonymousPool<Int>(total: 10_000, perSource: 8)
        for id in 0..<9_990 { pool.insert(id, source: "node-\(id)", now: UInt64(id)) }
        for id in 0..<8 { pool.insert(20_000 + id, source: "flood", now: 20_000) }
        #expect(pool.room(for: "node-0", limit: 9_998) == .evict(20_000, source: "flood"))
        for id in 0..<6 { pool.remove(20_000 + id) }
        #expect(pool.room(for: "node-0", limit: 9_992) == .full, "flood holds only one more than node-0")
        #expect(pool.room(for: "newcomer", limit: 9_992) == .evict(20_006, source: "flood"))
        pool.remove(20_006)
        #expect(pool.room(for: "newcomer", limit: 9_991) == .full, "every source holds one")
        pool.remove(20_007)
        #expect(pool.room(for: "newcomer", limit: 9_991) == .free)
    }

    @Test("an enrollment connection serves one request, at the source's rate, until its deadline")
    func enrollmentRequests() {
        var limits = AdmissionLimits()
        limits.enrollmentsPerSourcePerMinute = 6
        limits.enrollmentDeadline = .seconds(15)
        var admission = Admission(limits: limits, now: 0)
        _ = Self.connect(&admission, 1, from: "a", now: 0, as: .newcomer)
        let value10 = admission.enrollmentStarted(1, now: 100)
        #expect(value10 == .admit(closing: nil))
        let value11 = admission.enrollmentRequest(1, now: 200)
        #expect(value11 == .serve)
        let value12 = admission.enrollmentRequest(1, now: 300)
        #expect(value12 == .refuse(.secondRequest))
        _ = Self.connect(&admission, 2, from: "a", now: 400, as: .newcomer)
        _ = admission.enrollmentStarted(2, now: 400)
        let value13 = admission.enrollmentRequest(2, now: 500)
        #expect(value13 == .refuse(.enrollmentRate), "a burst of one a minute's tenth")
        let value14 = admission.expiredEnrollments(now: 14_999)
        #expect(value14 == [])
        let value15 = admission.expiredEnrollments(now: 15_000)
        #expect(value15 == [1])
        let value16 = admission.expiredEnrollments(now: 15_400).sorted()
        #expect(value16 == [2])
        #expect(admission.enrolling.count == 0)
        let counts = admission.takeRefusalSummaries(now: 60_000).first?.counts
        #expect(counts == ["second-request": 1, "enrollment-rate": 1, "deadline": 2])
    }

    @Test("refusals are summed per source and interval; beyond the key cap they fold into one")
    func refusalSummaries() {
        var counter = RefusalCounter(intervalMilliseconds: 60_000, maximumKeys: 3, now: 0)
        for index in 0..<10_000 {
            counter.count("source-\(index % 5)", reason: index % 2 == 0 ? "malformed" : "token-refused")
        }
        let value17 = counter.takeSummaries(now: 59_999)
        #expect(value17.isEmpty)
        let summaries = counter.takeSummaries(now: 60_000)
        #expect(summaries.count == 4)
        #expect(summaries.reduce(0) { $0 + $1.counts.values.reduce(0, +) } == 10_000)
        #expect(summaries.last?.key == RefusalCounter.otherKeys)
        #expect(summaries.last?.keys == 2)
        #expect(counter.isEmpty)
    }

    @Test("IPv6 peers are counted per /64, IPv4-mapped ones as IPv4")
    func sources() {
        #expect(admissionSourceKey(ip: "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(admissionSourceKey(ip: "2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64")
        #expect(admissionSourceKey(ip: "::ffff:192.0.2.5") == "192.0.2.5")
        #expect(admissionSourceKey(ip: "192.0.2.5") == "192.0.2.5")
    }

    @Test("an operator's stream records are rationed; what is over is counted by outcome")
    func recordBudget() {
        var limits = AdmissionLimits()
        limits.streamRecordsPerOperatorPerMinute = 60
        var budget = StreamRecordBudget(limits: limits, now: 0)
        var recorded = 0
        for _ in 0..<15 where budget.mayRecord("mallory", now: 0) { recorded += 1 }
        #expect(recorded == 10)
        let value18 = budget.mayRecord("bob", now: 0)
        #expect(value18)
        for _ in 0..<5 { budget.count("mallory", outcome: "denied") }
        let value19 = budget.takeSummaries(now: 60_000)
        #expect(
            value19 == [RefusalCounter.Summary(key: "mallory", counts: ["denied": 5], keys: 1, since: 0, until: 60_000)]
        )
    }

    @Test(
        "at the default 600 a minute, burst 100: the 101st stream at once is refused, then one per 100 ms, 600 over the next minute"
    )
    func recordBudgetExactCounts() {
        let limits = AdmissionLimits()
        #expect(limits.streamRecordsPerOperatorPerMinute == 600)
        var budget = StreamRecordBudget(limits: limits, now: 0)
        var recorded = 0
        while recorded < 1_000, budget.mayRecord("mallory", now: 0) { recorded += 1 }
        #expect(recorded == 100, "each stream costs one record, so the burst is exactly 100")
        // A refusal costs nothing: asking again and again does not push the next admission back.
        var refusedEarly = 0
        for _ in 0..<50 where !budget.mayRecord("mallory", now: 99) { refusedEarly += 1 }
        #expect(refusedEarly == 50)
        let onTime = budget.mayRecord("mallory", now: 100)
        let again = budget.mayRecord("mallory", now: 100)
        #expect(onTime && !again)
        // Asking every millisecond for the next minute admits exactly the refill: 600.
        var overTheMinute = 0
        for now in UInt64(101)...60_100 where budget.mayRecord("mallory", now: now) { overTheMinute += 1 }
        #expect(overTheMinute == 600)
        // Counted in exact integers: at 60 a minute, asking every 100 ms admits exactly 60 in a
        // minute (fractional tokens summed in floating point reached only 59).
        var slow = TokenBucket(perMinute: 60, now: 0)
        while slow.take(now: 0) {}
        var slowMinute = 0
        for now in stride(from: UInt64(100), through: 60_000, by: 100) where slow.take(now: now) { slowMinute += 1 }
        #expect(slowMinute == 60)
        // Another operator has its own full burst.
        var bob = 0
        while bob < 1_000, budget.mayRecord("bob", now: 60_100) { bob += 1 }
        #expect(bob == 100)
    }

    @Test("a token id or secret outside its exact format is malformed, before any look-up")
    func tokenFormat() {
        func request(_ id: String, _ secret: String = String(repeating: "a", count: 32)) -> RedeemRequest {
            RedeemRequest(tokenID: id, secret: secret, nodeName: nil, hostName: nil, labels: [:], csr: "")
        }
        #expect(request("0123abcd").malformation == nil)
        for id in ["0123ABCD", "0123abc", "0123abcde", "0123abc\n", String(repeating: "a", count: 4000), "０123abcd"] {
            #expect(request(id).malformation != nil, "\(id.debugDescription)")
        }
        #expect(request("0123abcd", "short").malformation != nil)
    }

    @Test("the anonymous caps must leave half the descriptors to nodes and operators")
    func descriptorCheck() {
        let limits = AdmissionLimits()
        #expect(limits.problem(descriptorLimit: 1024) == nil)
        #expect(limits.problem(descriptorLimit: 256)?.contains("ulimit -n") == true)
        #expect(limits.fitted(toDescriptorLimit: 1024).helloWaits == 192, "the hello pool takes what is left")
        #expect(limits.fitted(toDescriptorLimit: 896).helloWaits == 128, "but no fewer than 128")
        #expect(limits.fitted(toDescriptorLimit: 65536).helloWaits == 1024)
    }
}
