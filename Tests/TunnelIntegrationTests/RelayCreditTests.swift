import Glibc
import Testing
import TunnelIO
import TunnelTLS

@testable import Multiplex
@testable import TunnelRuntime

/// Issue #11: with the gateway's relay sizing the CI soak stalled every stream of a node. The
/// relay held back the node's credit for bytes queued behind a slow operator, and gave it back
/// only on the operator stream's `.writable`. That event came in the flush that also sent the
/// stream's last frame and closed it, and was lost twice over: the pump swept the handler before
/// reading the event, and the relay had ended and been let go of by then anyway. Each such stream
/// shrank the node connection's window for good, until the node could send nothing.
/// These tests make that flush happen on purpose, over real TLS on a socketpair: the operator's
/// window is one frame, so the relay's queue drains one frame per window update.
@Suite("Relay credit when a stream closes in the flush that drains it", .serialized)
struct RelayCreditTests {
    /// One frame of window on the operator's side: the relay's queue drains one frame per update.
    static let window = Limits.maxDataPayload
    /// Two windows and a tail of 12,000 bytes: the writer queues all but the first window (the
    /// relay holds back their credit). The tail is over half the send buffer, so the `.writable`
    /// comes only with the frame that takes all of it, which carries the FIN too, in one flush
    /// whatever the transmit queue's turn budget (at least 16 KiB).
    static let payload = (0..<(2 * window + 12_000)).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    /// Opens and accepts streams for a test, and records what happens to the connection.
    final class Side: MuxConnectionDelegate {
        var onOpen: (MuxConnection, StreamID) -> Void = { connection, id in connection.reset(id, code: .refusedStream) }
        var ready = false
        var closed: Failure?

        /// Accepts the peer's stream with `reader`.
        func accept(with reader: Reader) {
            onOpen = { connection, id in
                reader.stream = id
                try? connection.accept(id, handler: reader)
            }
        }

        func connectionEstablished(_ connection: MuxConnection) -> Failure? { nil }
        func connectionReady(_ connection: MuxConnection) { ready = true }
        func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool)
        {
            onOpen(connection, stream)
        }
        func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}
        func connectionClosed(_ connection: MuxConnection, failure: Failure) { closed = failure }
    }

    /// A stream end that keeps what arrives, and gives its credit back only while not paused.
    final class Reader: StreamHandler {
        let connection: MuxConnection
        var stream: StreamID = 0
        var received: [UInt8] = []
        var accepted = false
        var finished = false
        var reset: Failure?
        var writableCount = 0
        var paused = false
        private var unconsumed = 0

        init(connection: MuxConnection) { self.connection = connection }

        func streamAccepted(metadata: [UInt8]) { accepted = true }
        func streamReceived(_ bytes: ArraySlice<UInt8>) {
            received += bytes
            unconsumed += bytes.count
            if !paused { resume() }
        }
        func streamFinished() { finished = true }
        func streamReset(_ failure: Failure) { reset = failure }
        func streamWritable() { writableCount += 1 }

        func resume() {
            paused = false
            connection.consumed(unconsumed, on: stream)
            unconsumed = 0
        }
    }

    /// Two connections over a socketpair and real TLS 1.3: `gateway` accepts, `peer` dials.
    struct Pair {
        let gateway: MuxConnection
        let peer: MuxConnection
        let gatewaySide = Side()
        let peerSide = Side()

        init(runner: LoopRunner, pki: TestPKI, peer identity: TLSIdentity, peerSession: SessionConfiguration) throws {
            var descriptors: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &descriptors) == 0 else {
                throw TestFailure("socketpair failed")
            }
            let protocols = ["relay-credit-test"]
            let server = try TLSContext(
                configuration: TLSConfiguration(
                    role: .server, identity: pki.gateway,
                    peerVerification: .trustedCAs([
                        TrustedCA(.node, certificate: pki.nodeCA.certificate),
                        TrustedCA(.operator, certificate: pki.operatorCA.certificate),
                    ]), applicationProtocols: protocols))
            let client = try TLSContext(
                configuration: TLSConfiguration(
                    role: .client, identity: identity,
                    peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: pki.nodeCA.certificate)]),
                    applicationProtocols: protocols))
            // The gateway's own relay sizing: a send buffer of one frame, so the relay holds back soon.
            var gatewaySession = SessionConfiguration()
            gatewaySession.sendBufferLimit = RelayCreditTests.window
            gateway = MuxConnection(
                loop: runner.loop,
                socket: try StreamConnection.openPipe(loop: runner.loop, fileDescriptor: descriptors[0]),
                tls: try TLSConnection(context: server), role: .acceptor, configuration: gatewaySession,
                handshakeTimeout: .seconds(10), buffers: MuxBuffers(), logger: runner.logger)
            peer = MuxConnection(
                loop: runner.loop,
                socket: try StreamConnection.openPipe(loop: runner.loop, fileDescriptor: descriptors[1]),
                tls: try TLSConnection(context: client, serverHost: "localhost"), role: .dialer,
                configuration: peerSession, handshakeTimeout: .seconds(10), buffers: MuxBuffers(), logger: runner.logger
            )
            gateway.delegate = gatewaySide
            peer.delegate = peerSide
            gateway.start()
            peer.start()
        }

        var ready: Bool { gatewaySide.ready && peerSide.ready }
        var closed: Bool { gatewaySide.closed != nil && peerSide.closed != nil }

        func close() {
            gateway.abort(Failure(.noError, "test over"))
            peer.abort(Failure(.noError, "test over"))
        }
    }

    /// An operator whose stream window is one frame.
    static var operatorSession: SessionConfiguration {
        var session = SessionConfiguration()
        session.initialStreamWindow = UInt32(window)
        return session
    }

    /// Opens a stream from the operator, paused, and sends its FIN once accepted: the stream
    /// then closes when the gateway's last frame (with its FIN) goes out.
    static func openFinishedStream(_ pair: Pair, runner: LoopRunner) throws -> Reader {
        let reader = Reader(connection: pair.peer)
        reader.paused = true
        reader.stream = try pair.peer.openStream(metadata: [], interactive: false, handler: reader)
        #expect(runner.run(until: { reader.accepted || reader.reset != nil }))
        pair.peer.finish(reader.stream)
        return reader
    }

    /// Waits until the operator has its first window and `stalled` holds, then reads on to the
    /// FIN, one window per update: the last frame drains the queue and carries the FIN.
    static func readAfterStall(_ reader: Reader, runner: LoopRunner, until stalled: () -> Bool = { true }) {
        let stalledAtOneWindow = runner.run(until: { stalled() && reader.received.count == window })
        #expect(stalledAtOneWindow)
        reader.resume()
        #expect(runner.run(until: { reader.finished }))
        #expect(reader.received == payload)
    }

    @Test("a handler hears the .writable raised in the flush that closes its stream")
    func writableBeforeSweep() throws {
        let runner = try LoopRunner()
        let pki = try TestPKI()
        let pair = try Pair(
            runner: runner, pki: pki, peer: try pki.identity(.operator, "op"), peerSession: Self.operatorSession)
        defer {
            pair.close()
            runner.run(until: { pair.closed })
            runner.finish()
        }
        #expect(runner.run(until: { pair.ready }))
        let writer = Reader(connection: pair.gateway)
        pair.gatewaySide.accept(with: writer)
        let reader = try Self.openFinishedStream(pair, runner: runner)
        #expect(runner.run(until: { writer.finished }))
        #expect(try pair.gateway.write(Self.payload[...], on: writer.stream) == false)
        pair.gateway.finish(writer.stream)
        Self.readAfterStall(reader, runner: runner)
        #expect(writer.writableCount == 1, "the .writable of the flush that closed the stream was dropped")
    }

    @Test("a relay gives back the node's credit when the operator's stream closes in the flush that drains it")
    func relayReturnsHeldCredit() throws {
        let runner = try LoopRunner()
        let pki = try TestPKI()
        let operatorPair = try Pair(
            runner: runner, pki: pki, peer: try pki.identity(.operator, "op"), peerSession: Self.operatorSession)
        let nodePair = try Pair(
            runner: runner, pki: pki, peer: try pki.identity(.node, "node-1"), peerSession: SessionConfiguration())
        defer {
            operatorPair.close()
            nodePair.close()
            runner.run(until: { operatorPair.closed && nodePair.closed })
            runner.finish()
        }
        #expect(runner.run(until: { operatorPair.ready && nodePair.ready }))
        // The gateway: relays the operator's stream to the node, and lets go of the relay when it
        // ends, as `Gateway+Relay` does.
        var kept: StreamRelay?
        var ended = false
        operatorPair.gatewaySide.onOpen = { connection, id in
            let started = StreamRelay(first: (connection, id), secondConnection: nodePair.gateway) { relay, outcome in
                switch outcome {
                case .accepted(let metadata): try? connection.accept(id, metadata: metadata, handler: relay.first)
                case .ended:
                    ended = true
                    kept = nil
                }
            }
            connection.attach(started.first, to: id)
            try? started.openSecond(metadata: [], interactive: false)
            kept = started
        }
        // The node: sends the payload and its FIN as soon as the operator's FIN has come through.
        let node = Reader(connection: nodePair.peer)
        nodePair.peerSide.accept(with: node)
        let reader = try Self.openFinishedStream(operatorPair, runner: runner)
        #expect(runner.run(until: { node.finished }))
        try nodePair.peer.write(Self.payload[...], on: node.stream)
        nodePair.peer.finish(node.stream)
        Self.readAfterStall(reader, runner: runner, until: { ended })
        #expect(kept == nil)
        // Every byte the node sent went through to the operator, so the gateway owes it no
        // credit: what stays unconsumed here is lost from the node's connection window for good.
        #expect(nodePair.gateway.session.connectionWindow.unconsumed == 0)
        #expect(nodePair.gateway.session.streamCount == 0 && operatorPair.gateway.session.streamCount == 0)
    }
}
