import Testing
import TunnelEdgeCore

/// Issue #13: a node that knows several gateway replicas spreads over them, fails over to the
/// next after a short jittered wait, and backs off only once every replica failed in a row.
@Suite struct GatewayRotationTests {
    /// A schedule whose waits are exactly the backoff's ceiling (floor 1), so the test can name them.
    private static let exact = ReconnectSchedule(
        backoff: Backoff(base: .seconds(1), cap: .seconds(30), floor: 1), settleMilliseconds: 1_000)

    @Test(
        "a failure moves to the next replica within the failover jitter; a full round of failures backs off and grows")
    func failoverThenBackoff() {
        var rotation = GatewayRotation(count: 3, start: 1, schedule: Self.exact, failoverJitter: 800)
        var random = Seeded(state: 7)
        #expect(rotation.current == 1)
        #expect(rotation.failed(now: 0, using: &random) <= 800)
        #expect(rotation.current == 2)
        #expect(rotation.failed(now: 10, using: &random) <= 800)
        #expect(rotation.current == 0)
        // The third failure in a row closes the round: the backoff's first ceiling, 1 s.
        #expect(rotation.failed(now: 20, using: &random) == 1000)
        #expect(rotation.current == 1)
        _ = rotation.failed(now: 30, using: &random)
        _ = rotation.failed(now: 40, using: &random)
        #expect(rotation.failed(now: 50, using: &random) == 2000, "the second full round waits longer")
    }

    @Test("a session that settled starts the count over and fails over at once; a flap counts as a failure")
    func settledSessionResets() {
        var rotation = GatewayRotation(count: 2, start: 0, schedule: Self.exact)
        var random = Seeded(state: 3)
        for now in UInt64(0)..<6 { _ = rotation.failed(now: now, using: &random) }
        #expect(rotation.failuresInRow == 6)
        rotation.accepted(now: 1_000)
        _ = rotation.failed(now: 1_200, using: &random)
        #expect(rotation.failuresInRow == 7, "a session of 0.2 s was a flap")
        rotation.accepted(now: 10_000)
        // The settled session on one replica ended: the node fails over at once to the other.
        let wait = rotation.failed(now: 40_000, using: &random)
        #expect(rotation.failuresInRow == 1)
        #expect(wait <= rotation.failoverJitter)
    }

    @Test("one replica behaves like a single gateway: every failure backs off")
    func singleGateway() {
        var rotation = GatewayRotation(count: 1, start: 5, schedule: Self.exact, failoverJitter: 10)
        var random = Seeded(state: 11)
        #expect(rotation.current == 0)
        #expect(rotation.failed(now: 0, using: &random) == 1000)
        #expect(rotation.failed(now: 1, using: &random) == 2000)
        #expect(rotation.current == 0)
    }

    @Test("random starts spread a fleet over every replica")
    func spread() {
        var seen = Set<Int>()
        for start in 0..<300 {
            seen.insert(GatewayRotation(count: 3, start: Int.random(in: 0..<3) + start * 3).current)
        }
        #expect(seen == [0, 1, 2])
        #expect(GatewayRotation(count: 3, start: -1).current == 2)
    }
}
