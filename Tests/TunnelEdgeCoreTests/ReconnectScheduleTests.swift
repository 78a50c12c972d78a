import Multiplex
import Testing
import TunnelEdgeCore

/// The node's reconnect schedule on a virtual clock (milliseconds).
@Suite("Reconnecting after the gateway went away")
struct ReconnectScheduleTests {
    private let base = Duration.milliseconds(500)

    private func schedule() -> ReconnectSchedule {
        ReconnectSchedule(backoff: Backoff(base: base, cap: .seconds(30)), settleMilliseconds: 1_000)
    }

    @Test("once the gateway accepted the node, the next loss waits at most the base, however long the outage before")
    func acceptanceStartsOver() {
        var reconnect = schedule()
        var random = LongestWait()
        var now: UInt64 = 0
        // A long outage: ten failed dials widen the wait to the cap.
        for _ in 0..<10 { now += reconnect.delayAfterLoss(now: now, using: &random).wholeMilliseconds }
        #expect(reconnect.delayAfterLoss(now: now, using: &random) == .seconds(30))
        reconnect.accepted(now: now)
        // Killed 3 s later (sooner than the 30 s session the old rule wanted).
        now += 3_000
        #expect(reconnect.delayAfterLoss(now: now, using: &random) <= base)
        // The restarted gateway is not listening yet: the dial after that waits at most twice the base.
        #expect(reconnect.delayAfterLoss(now: now, using: &random) <= base * 2)
    }

    @Test("a gateway that accepts and drops at once is a flap: the waits widen as for failures")
    func flapsWiden() {
        var reconnect = schedule()
        var random = LongestWait()
        var now: UInt64 = 0
        var waits: [Duration] = []
        for _ in 0..<5 {
            reconnect.accepted(now: now)
            now += 100
            let wait = reconnect.delayAfterLoss(now: now, using: &random)
            waits.append(wait)
            now += wait.wholeMilliseconds
        }
        #expect(waits == [base * 2, base * 4, base * 8, base * 16, base * 32], "\(waits)")
        #expect(reconnect.flaps == 5)
        // One session that settles ends the run of flaps.
        reconnect.accepted(now: now)
        now += 1_000
        #expect(reconnect.delayAfterLoss(now: now, using: &random) == base)
        #expect(reconnect.flaps == 0)
    }

    @Test("the waits are jittered: a fleet that lost the gateway together does not return in one instant")
    func jitterSpreads() {
        var random = SystemRandomNumberGenerator()
        let waits = (0..<1_000).map { _ in
            var reconnect = schedule()
            reconnect.accepted(now: 0)
            return reconnect.delayAfterLoss(now: 5_000, using: &random).wholeMilliseconds
        }
        #expect(waits.allSatisfy { $0 <= 500 })
        // Uniform over 0…500 ms: each tenth of the range holds some of the thousand nodes.
        let tenths = Set(waits.map { min($0 / 50, 9) })
        #expect(tenths.count == 10, "\(tenths.sorted())")
    }
}
