import Multiplex
import Testing
import TunnelIO
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issue #11: streams an operator opens once its TLS handshake is done, before the gateway's
/// HELLO arrived (docs/PROTOCOL.md: the session queues them), are each answered: echoed, or
/// refused with a reset. `fleet-sim --open-before-hello` lost about half of them.
@Suite("Streams opened before the gateway's HELLO", .serialized)
struct OpenBeforeHelloTests {
    /// One echo stream: what it sent, what came back, how it ended.
    final class EchoCheck: StreamHandler {
        let payload: [UInt8]
        weak var connection: MuxConnection?
        var stream: StreamID = 0
        var received: [UInt8] = []
        var finished = false
        var reset: Failure?

        init(payload: [UInt8]) { self.payload = payload }

        var done: Bool { finished || reset != nil }

        func streamReceived(_ bytes: ArraySlice<UInt8>) {
            received += bytes
            connection?.consumed(bytes.count, on: stream)
        }
        func streamFinished() { finished = true }
        func streamReset(_ failure: Failure) { reset = failure }
        func streamWritable() {}
    }

    /// An operator that opens its streams the moment its TLS handshake is done.
    final class EagerOperator: MuxConnectionDelegate {
        let node: String
        let count: Int
        var checks: [EchoCheck] = []
        var closed: Failure?

        init(node: String, count: Int) {
            self.node = node
            self.count = count
        }

        func connectionEstablished(_ connection: MuxConnection) -> Failure? {
            for index in 0..<count {
                let check = EchoCheck(
                    payload: Array("stream \(index) ".utf8) + [UInt8](repeating: UInt8(index), count: index * 100))
                check.connection = connection
                do {
                    let request = try TunnelProtocol.encode(OperatorRequest.connect(node: node, service: "echo"))
                    check.stream = try connection.openStream(
                        metadata: request, interactive: index % 2 == 0, handler: check)
                    try connection.write(check.payload[...], on: check.stream)
                    connection.finish(check.stream)
                } catch {
                    check.reset = Failure(.internalError, "could not open: \(error)")
                }
                checks.append(check)
            }
            return nil
        }

        func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool)
        {
            connection.reset(stream, code: .refusedStream)
        }
        func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}
        func connectionClosed(_ connection: MuxConnection, failure: Failure) { closed = failure }
    }

    @Test("twenty streams opened before the gateway's HELLO are all echoed")
    func streamsBeforeHello() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        try fixture.startNode(fixture.pki.identity(.node, "node-17"))
        #expect(fixture.runner.run(until: { fixture.online("node-17") }))
        let identity = try fixture.pki.identity(.operator, "eager", roles: ["admin"])
        let context = try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: identity,
                peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: fixture.pki.nodeCA.certificate)]),
                applicationProtocols: [TunnelProtocol.operatorALPN]))
        let eager = EagerOperator(node: "node-17", count: 20)
        var connection: MuxConnection?
        var socket: StreamConnection?
        socket = try StreamConnection.connect(
            loop: fixture.runner.loop, to: SocketAddress(ip: "127.0.0.1", port: fixture.port),
            timeoutMilliseconds: 5_000
        ) { result in
            guard let connected = socket, (try? result.get()) != nil else { return }
            let started = MuxConnection(
                loop: fixture.runner.loop, socket: connected,
                tls: try! TLSConnection(context: context, serverHost: "localhost"), role: .dialer,
                configuration: SessionConfiguration(), handshakeTimeout: .seconds(10), buffers: MuxBuffers(),
                logger: fixture.runner.logger)
            started.delegate = eager
            connection = started
            started.start()
        }
        defer { connection?.abort(Failure(.noError, "test over")) }
        #expect(fixture.runner.run(until: { eager.checks.count == 20 && eager.checks.allSatisfy(\.done) }))
        for (index, check) in eager.checks.enumerated() {
            #expect(
                check.finished && check.received == check.payload,
                "stream \(index): \(check.received.count) of \(check.payload.count) bytes back, reset \(String(describing: check.reset))"
            )
        }
        #expect(eager.closed == nil)
    }
}
