import Testing

@testable import TunnelGateway

/// Issue #13: one peer link per replica pair, dialed on demand, backed off after failures.
@Suite struct PeerLinksTests {
    @Test("the first stream dials, the next waits, a link is shared, a failure backs off and grows, success resets")
    func lifecycle() {
        var links = PeerLinks<Int>(dialTimeout: 1000)
        guard case .dial(let address) = links.use("r2", address: "r2:7443", now: 0) else {
            Issue.record("no dial")
            return
        }
        #expect(address == "r2:7443")
        guard case .wait = links.use("r2", address: "r2:7443", now: 500) else {
            Issue.record("a second dial under way")
            return
        }
        guard case .dial = links.use("r2", address: "r2:7443", now: 1000) else {
            Issue.record("a dial past its timeout is not given up")
            return
        }
        links.dialed("r2", link: 7)
        guard case .send(7) = links.use("r2", address: "r2:7443", now: 1001) else {
            Issue.record("the link is not used")
            return
        }

        var retryAts: [UInt64] = []
        for attempt in 0..<4 {
            let now = UInt64(10_000 * (attempt + 1))
            links.failed("r2", now: now)
            #expect(!links.isReachable("r2", now: now))
            guard case .unavailable(let retryAt) = links.use("r2", address: "r2:7443", now: now) else {
                Issue.record("no backoff")
                return
            }
            retryAts.append(retryAt - now)
            #expect(links.isReachable("r2", now: retryAt))
        }
        // Floor 0.5: the 4th wait (ceiling 4 s) is at least 2 s, more than the 1st's ceiling of 0.5 s.
        #expect(retryAts[0] <= 500 && retryAts[3] >= 2000, "\(retryAts)")
        links.dialed("r2", link: 8)
        links.failed("r2", now: 100_000)
        guard case .unavailable(let retryAt) = links.use("r2", address: "r2:7443", now: 100_000) else {
            Issue.record("no backoff")
            return
        }
        #expect(retryAt - 100_000 <= 500)
    }

    @Test("the table holds at most maxPeers replicas; forgetting one makes room")
    func bounded() {
        var links = PeerLinks<Int>()
        for index in 0..<PeerLinks<Int>.maxPeers { _ = links.use("r\(index)", address: "a", now: 0) }
        #expect(!links.isReachable("one-too-many", now: 0))
        links.forget("r0")
        #expect(links.isReachable("one-too-many", now: 0))
    }
}
