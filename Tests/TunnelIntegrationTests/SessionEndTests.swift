import Multiplex
import Testing
import TunnelClient
import TunnelEdgeCore
import TunnelIO
import TunnelOperator
import TunnelRuntime
import TunnelTLS

/// How sessions end as operators and nodes see it: revocation in words, and two machines with
/// one node key slowing each other down instead of spinning.
@Suite("How sessions end", .serialized)
struct SessionEndTests {
    @Test("a revoked operator's stream ends with a sentence that says revoked, not an application code")
    func revokedOperatorSeesWhy() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        try fixture.startNode(try fixture.pki.identity(.node, "node-17"))
        #expect(fixture.runner.run(until: { fixture.online("node-17") }))
        let connection = try #require(try fixture.connectOperator(try fixture.pki.identity(.operator, "alice"))?.get())
        let pipe = try LocalPipe(loop: fixture.runner.loop)
        defer { pipe.testSide.close() }
        var result: OperatorFailure??
        fixture.operators.last!.splice(
            on: connection, node: "node-17", service: "echo", interactive: true,
            input: pipe.tunnelSide, output: pipe.tunnelSide
        ) { result = .some($0) }
        try pipe.testSide.write(Array("hi".utf8))
        #expect(fixture.runner.run(until: { pipe.received.count == 2 }))
        _ = fixture.gateway.administer(.revokeUser(name: "alice"), actor: "test")
        #expect(fixture.runner.run(until: { result != nil }))
        let message = try #require(result ?? nil).message
        #expect(message.contains("revoked your access"), "\(message)")
        #expect(!message.contains("application-"), "\(message)")
    }

    @Test(
        "two machines with one node key: the newest session wins, the replaced one waits before it comes back, the gateway says so"
    )
    func flappingNodeKey() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        let identity = try fixture.pki.identity(.node, "node-5")
        let loop = fixture.runner.loop
        var ups: [[UInt64]] = [[], []]
        var replacedAt: [[UInt64]] = [[], []]
        var clients: [EdgeClient] = []
        for index in 0..<2 {
            var configuration = EdgeClientConfiguration(
                gateway: fixture.pki.endpoint(port: fixture.port, identity: identity),
                services: ["echo": LocalService(host: "127.0.0.1", port: fixture.echo.port)])
            configuration.replacedBackoff = Backoff(base: .milliseconds(200), cap: .seconds(5), floor: 0.5)
            let client = try EdgeClient(loop: loop, configuration: configuration, logger: fixture.runner.logger)
            client.onStateChange = { up, failure in
                if up {
                    ups[index].append(loop.now)
                } else if failure?.code == TunnelErrorCode.replaced {
                    replacedAt[index].append(loop.now)
                }
            }
            client.start()
            clients.append(client)
        }
        // Until each took the session from the other and the gateway saw three takeovers (what
        // it calls flapping); that the waits then grow is the core's (`EdgeCoreSessionTests`).
        fixture.runner.run(
            until: { replacedAt.allSatisfy { !$0.isEmpty } && replacedAt.joined().count >= 3 }, timeout: .seconds(8))
        #expect(!replacedAt[0].isEmpty && !replacedAt[1].isEmpty, "each machine was replaced by the other")
        for index in 0..<2 {
            for replaced in replacedAt[index] {
                // The next time this machine came back: never sooner than half the first wait.
                if let back = ups[index].first(where: { $0 > replaced }) {
                    #expect(
                        back - replaced >= 100, "machine \(index) was back \(back - replaced) ms after being replaced")
                }
            }
        }
        let status = try #require(fixture.gateway.nodeStatuses().first { $0.name == "node-5" })
        #expect(
            status.previousSessionEnded?.contains("two machines may share this node's key") == true,
            "\(status.previousSessionEnded ?? "")")
        #expect(status.previousSessionEnded?.contains("127.0.0.1:") == true)
        for client in clients { client.stop() }
    }
}

extension SessionEndTests {
    @Test(
        "a local reader that leaves after the operator finished (ssh logging out) ends the stream cleanly, not with a reset"
    )
    func readerGoneAfterFinishIsClean() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        try fixture.startNode(try fixture.pki.identity(.node, "node-17"))
        #expect(fixture.runner.run(until: { fixture.online("node-17") }))
        let connection = try #require(try fixture.connectOperator(try fixture.pki.identity(.operator, "alice"))?.get())
        // stdin and stdout of `tunnel proxy`, as ssh holds them.
        let stdin = try LocalPipe(loop: fixture.runner.loop)
        let stdout = try LocalPipe(loop: fixture.runner.loop)
        var result: OperatorFailure??
        fixture.operators.last!.splice(
            on: connection, node: "node-17", service: "echo", interactive: true,
            input: stdin.tunnelSide, output: stdout.tunnelSide
        ) { result = .some($0) }
        // ssh sends its last bytes and exits: its stdin ends and its stdout goes away before
        // the far side's last bytes (the echo) come back.
        try stdin.testSide.write(Array(repeating: 7, count: 64 * 1024))
        try stdin.testSide.shutdown()
        stdout.testSide.close()
        #expect(fixture.runner.run(until: { result != nil }))
        #expect(result.map { $0 == nil } == true, "\(String(describing: result))")
        stdin.testSide.close()
    }
}
