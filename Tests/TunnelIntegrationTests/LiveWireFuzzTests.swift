import Multiplex
import Testing
import TunnelClient
import TunnelEdgeCore
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// The libFuzzer harnesses' idea (`Sources/MultiplexFuzzing`) carried onto the real listeners:
/// a peer completes a real TLS handshake with a valid certificate, then sends mutated frames.
/// The gateway must stay up, and every other node and operator keep working; the client must
/// survive a hostile "gateway" and serve again once a sane one answers. Seeded, so a failure
/// replays; bounded in rounds and time.
@Suite("Live-wire fuzzing", .serialized)
struct LiveWireFuzzTests {
    /// A small seeded generator (a 64-bit LCG's high bits), so each round replays from its seed.
    struct Mutator {
        private var state: UInt64

        init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(max(bound, 1)))
        }

        mutating func bytes(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in UInt8(next(256)) }
        }

        /// One plausible frame: right types, stream IDs near the ones in use, metadata that asks
        /// for something real half of the time.
        mutating func frame(requests: [[UInt8]]) -> Frame {
            let id = StreamID(next(12))
            switch next(8) {
            case 0:
                return .open(
                    id, metadata: (next(2) == 0 ? requests[next(requests.count)] : bytes(next(64)))[...],
                    interactive: next(2) == 0, fin: next(4) == 0)
            case 1: return .accept(id, metadata: bytes(next(16))[...], fin: next(2) == 0)
            case 2: return .data(id, bytes(next(2048))[...], fin: next(3) == 0)
            case 3: return .windowUpdate(id, increment: UInt32(next(1 << 20)))
            case 4: return .reset(id, ErrorCode(rawValue: UInt32(next(0x110))))
            case 5: return .ping(opaque: UInt64(next(1 << 30)), ack: next(2) == 0)
            case 6:
                return .goAway(lastStreamID: id, ErrorCode(rawValue: UInt32(next(12))), message: bytes(next(40))[...])
            default:
                return .hello(
                    HelloFrame(
                        minVersion: UInt8(next(3)), maxVersion: UInt8(next(3)), maxConcurrentStreams: UInt32(next(200)),
                        initialStreamWindow: UInt32(next(1 << 20)), connectionWindow: UInt32(next(1 << 27))))
            }
        }

        /// A burst of frames after a valid HELLO, some bytes flipped, cut short or followed by junk.
        mutating func burst(requests: [[UInt8]]) -> [UInt8] {
            var wire = FrameEncoder.encode(.helloV1)
            for _ in 0..<(1 + next(20)) {
                var encoded = FrameEncoder.encode(frame(requests: requests))
                switch next(10) {
                case 0, 1: encoded[next(encoded.count)] ^= UInt8(1 << next(8))
                case 2: encoded = Array(encoded.prefix(next(encoded.count)))
                case 3: encoded += bytes(next(24))
                default: break
                }
                wire += encoded
            }
            return wire
        }
    }

    @Test("mutated frames at the gateway from authenticated operators and nodes: nobody else notices")
    func gatewayListener() throws {
        let fixture = try GatewayFixture()
        defer { fixture.tearDown() }
        var drops = 0
        for name in ["node-17", "node-18"] {
            let node = try fixture.startNode(try fixture.pki.identity(.node, name))
            node.onStateChange = { up, _ in if !up { drops += 1 } }
        }
        #expect(fixture.runner.run(until: { fixture.online("node-17") && fixture.online("node-18") }))
        let since = fixture.gateway.nodeStatuses().filter { $0.online }.map { ($0.name, $0.connectedSince) }
        let bob = try #require(try fixture.connectOperator(try fixture.pki.identity(.operator, "bob"))?.get())
        let identities = [try fixture.pki.identity(.operator, "mallory"), try fixture.pki.identity(.node, "node-fuzz")]
        let requests = [
            try TunnelProtocol.encode(OperatorRequest.connect(node: "node-17", service: "echo")),
            try TunnelProtocol.encode(OperatorRequest.connect(node: "node-18", service: "logs")),
            try TunnelProtocol.encode(OperatorRequest.listNodes()),
            try TunnelProtocol.encode(ServiceRequest(service: "echo")),
        ]
        for round in 0..<120 {
            var mutator = Mutator(seed: UInt64(round))
            let identity = identities[round % 2]
            let alpn = round % 2 == 0 ? TunnelProtocol.operatorALPN : TunnelProtocol.nodeALPN
            var dialed: WirePeer??
            try WirePeer.dial(
                loop: fixture.runner.loop, port: fixture.port, identity: identity,
                gatewayCA: fixture.pki.nodeCA.certificate, protocols: [alpn]
            ) { dialed = .some($0) }
            fixture.runner.run(until: { dialed != nil })
            let fuzzer = try #require(dialed ?? nil, "round \(round)")
            #expect(fixture.runner.run(until: { fuzzer.isEstablished || fuzzer.ended }), "round \(round): no handshake")
            fuzzer.send(mutator.burst(requests: requests))
            fixture.runner.run(until: { fuzzer.ended }, timeout: .milliseconds(200))
            fuzzer.close()
        }
        #expect(drops == 0, "no node's session was dropped")
        let after = fixture.gateway.nodeStatuses().filter { $0.name != "node-fuzz" && $0.online }.map {
            ($0.name, $0.connectedSince)
        }
        #expect(after.map(\.0) == since.map(\.0) && after.map(\.1) == since.map(\.1), "the same sessions, still online")
        #expect(bob.isEstablished)
        #expect(try fixture.echoThrough(bob, node: "node-17") == nil)
        #expect(try fixture.echoThrough(bob, node: "node-18") == nil)
        let carol = try #require(try fixture.connectOperator(try fixture.pki.identity(.operator, "carol"))?.get())
        #expect(try fixture.echoThrough(carol, node: "node-17") == nil)
    }

    @Test("mutated frames from a hostile gateway at the client: it survives, reconnects and serves a sane one")
    func clientServedSide() throws {
        let runner = try LoopRunner()
        let pki = try TestPKI()
        let echo = try EchoServer(loop: runner.loop)
        var accepted: [WirePeer] = []
        let listener = try WirePeer.listen(loop: runner.loop, identity: pki.gateway, nodeCA: pki.nodeCA.certificate) {
            accepted.append($0)
        }
        var configuration = EdgeClientConfiguration(
            gateway: pki.endpoint(port: listener.localAddress.port, identity: try pki.identity(.node, "node-17")),
            services: ["echo": LocalService(host: "127.0.0.1", port: echo.port)])
        configuration.reconnect = ReconnectSchedule(backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(50)))
        configuration.replacedBackoff = Backoff(base: .milliseconds(10), cap: .milliseconds(50), floor: 0.5)
        let client = try EdgeClient(loop: runner.loop, configuration: configuration, logger: runner.logger)
        client.start()
        let requests = [
            try TunnelProtocol.encode(ServiceRequest(service: "echo")),
            try TunnelProtocol.encode(ServiceRequest(service: "nope")),
        ]
        for round in 0..<30 {
            #expect(
                runner.run(until: { accepted.count > round && accepted[round].isEstablished }),
                "round \(round): the client did not come back")
            guard accepted.count > round else { break }
            var mutator = Mutator(seed: 1000 + UInt64(round))
            // The gateway opens even stream IDs; the mutator's are mixed, which is hostile too.
            accepted[round].send(mutator.burst(requests: requests))
            runner.run(until: { accepted[round].ended }, timeout: .milliseconds(200))
            accepted[round].close()
        }
        // A sane gateway at last: the client serves a stream end to end.
        let sane = accepted.count
        #expect(runner.run(until: { accepted.count > sane && accepted[sane].isEstablished }))
        if accepted.count > sane {
            let gateway = accepted[sane]
            let metadata = try TunnelProtocol.encode(ServiceRequest(service: "echo"))
            gateway.send(
                .helloV1, .open(2, metadata: metadata[...], interactive: false, fin: false),
                .data(2, Array("sane".utf8)[...], fin: true))
            #expect(runner.run(until: { gateway.finished(2) }), "\(gateway.frames)")
            let echoed = gateway.frames.flatMap { frame -> [UInt8] in
                if case .data(2, let bytes, _) = frame { Array(bytes) } else { [] }
            }
            #expect(echoed == Array("sane".utf8))
        }
        client.stop()
        for peer in accepted { peer.close() }
        listener.close()
        echo.close()
        runner.finish()
    }
}
