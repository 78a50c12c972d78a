import Multiplex
import Testing
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// A FIN is never lost (issue 9, item 10): one that rides on the OPEN, or that arrives while the
/// node is still dialing its service, reaches the service as EOF. The echo service half-closes
/// after EOF, so the FIN coming back proves it saw the end.
@Suite("A FIN is never lost", .serialized)
struct FinDeliveryTests {
    enum Shape: String, CaseIterable {
        /// OPEN carrying the FIN flag.
        case finOnOpen
        /// OPEN, then an empty DATA with FIN in the same write: the node is still connecting.
        case finRightAfterOpen
        /// OPEN, DATA "hi" and FIN together.
        case dataAndFinRightAfterOpen
    }

    static func frames(_ shape: Shape, id: StreamID, metadata: [UInt8]) -> [Frame] {
        switch shape {
        case .finOnOpen:
            [.open(id, metadata: metadata[...], interactive: false, fin: true)]
        case .finRightAfterOpen:
            [.open(id, metadata: metadata[...], interactive: false, fin: false), .data(id, [], fin: true)]
        case .dataAndFinRightAfterOpen:
            [
                .open(id, metadata: metadata[...], interactive: false, fin: false),
                .data(id, Array("hi".utf8)[...], fin: true),
            ]
        }
    }

    @Test("through the gateway", arguments: Shape.allCases)
    func throughTheGateway(shape: Shape) throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        try fixture.startNode(try fixture.pki.identity(.node, "node-17"))
        #expect(fixture.runner.run(until: { fixture.online("node-17") }))
        var dialed: WirePeer??
        try WirePeer.dial(
            loop: fixture.runner.loop, port: fixture.port, identity: try fixture.pki.identity(.operator, "alice"),
            gatewayCA: fixture.pki.nodeCA.certificate, protocols: [TunnelProtocol.operatorALPN]
        ) { dialed = .some($0) }
        fixture.runner.run(until: { dialed != nil })
        let alice = try #require(dialed ?? nil)
        defer { alice.close() }
        let metadata = try TunnelProtocol.encode(OperatorRequest.connect(node: "node-17", service: "echo"))
        var bytes: [UInt8] = []
        for frame in [Frame.helloV1] + Self.frames(shape, id: 1, metadata: metadata) {
            FrameEncoder.append(frame, to: &bytes)
        }
        alice.send(bytes)
        #expect(fixture.runner.run(until: { alice.finished(1) }, timeout: .seconds(5)), "\(alice.frames)")
        #expect(alice.resets[1] == nil)
    }

    @Test("directly at the node", arguments: Shape.allCases)
    func atTheNode(shape: Shape) throws {
        let runner = try LoopRunner()
        let pki = try TestPKI()
        let echo = try EchoServer(loop: runner.loop)
        var gatewaySide: WirePeer?
        let listener = try WirePeer.listen(loop: runner.loop, identity: pki.gateway, nodeCA: pki.nodeCA.certificate) {
            gatewaySide = $0
        }
        let configuration = EdgeClientConfiguration(
            gateway: pki.endpoint(port: listener.localAddress.port, identity: try pki.identity(.node, "node-17")),
            services: ["echo": LocalService(host: "127.0.0.1", port: echo.port)])
        let client = try EdgeClient(loop: runner.loop, configuration: configuration, logger: runner.logger)
        client.start()
        #expect(runner.run(until: { gatewaySide?.isEstablished == true }))
        let gateway = try #require(gatewaySide)
        var bytes: [UInt8] = []
        let metadata = try TunnelProtocol.encode(ServiceRequest(service: "echo"))
        for frame in [Frame.helloV1] + Self.frames(shape, id: 2, metadata: metadata) {
            FrameEncoder.append(frame, to: &bytes)
        }
        gateway.send(bytes)
        #expect(runner.run(until: { gateway.finished(2) }, timeout: .seconds(5)), "\(gateway.frames)")
        #expect(gateway.accepted(2))
        #expect(gateway.resets[2] == nil)
        client.stop()
        gateway.close()
        listener.close()
        echo.close()
        runner.finish()
    }
}
