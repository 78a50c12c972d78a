import Testing
import TunnelClient
import TunnelEdgeCore
import TunnelRuntime

/// A real node coming back after gateway restarts; the schedule itself is tested on a virtual
/// clock in `TunnelEdgeCoreTests`.
@Suite("Reconnecting after the gateway went away, for real")
struct ReconnectTests {
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
