import Testing
import TunnelClient
import TunnelRuntime

/// A generator stuck at its largest value: every jittered wait is its ceiling, so a test reads
/// the longest a node could wait.
private struct LongestWait: RandomNumberGenerator {
    mutating func next() -> UInt64 { .max }
}

/// The node's reconnect schedule on a virtual clock (milliseconds), and a real node coming back
/// after gateway restarts.
@Suite("Reconnecting after the gateway went away")
struct ReconnectTests {
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

extension ReconnectTests {
    @Test("a real node is back within a second after each of six gateway restarts")
    func backAfterRestarts() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        let identity = try fixture.pki.identity(.node, "node-3")
        var configuration = EdgeClientConfiguration(
            gateway: fixture.pki.endpoint(port: fixture.port, identity: identity),
            services: ["echo": LocalService(host: "127.0.0.1", port: fixture.echo.port)])
        // Waits of at least half their ceiling: under the old rule (reset after a 30 s session)
        // the sixth return would take at least 0.5 × 200 ms × 2⁵ = 3.2 s.
        configuration.reconnect = ReconnectSchedule(
            backoff: Backoff(base: .milliseconds(200), cap: .seconds(30), floor: 0.5),
            settleMilliseconds: 0)
        let client = try EdgeClient(
            loop: fixture.runner.loop, configuration: configuration, logger: fixture.runner.logger)
        defer { client.stop() }
        client.start()
        #expect(fixture.runner.run(until: { fixture.online("node-3") }))
        for round in 0..<6 {
            try fixture.restartGateway()
            let restarted = fixture.runner.loop.now
            #expect(fixture.runner.run(until: { fixture.online("node-3") }, timeout: .seconds(10)), "round \(round)")
            let back = fixture.runner.loop.now - restarted
            #expect(back < 1_000, "round \(round): back after \(back) ms")
        }
    }
}
