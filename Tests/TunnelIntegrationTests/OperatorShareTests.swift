import Multiplex
import Testing
import TunnelIO
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issue #11: a ClientHello is read before a place among the handshakes is charged, and an
/// eighth of the places is the operators', so an admin gets in while a fleet's handshakes fill
/// the rest, and a node finding them full waits for the next. Failed before: the stalled nodes
/// took every place and the operator was closed at accept.
@Suite("Operators' share of the handshakes", .serialized)
struct OperatorShareTests {
    /// A raw TCP connection from `source` (a loopback address of its own) that sends `hello`
    /// and then nothing, and keeps what comes back.
    final class StalledPeer {
        let socket: StreamConnection
        var connected = false
        var ended = false
        var received = 0

        init(_ fixture: GatewayFixture, source: String, hello: [UInt8]) throws {
            var connected = false
            socket = try StreamConnection.connect(
                loop: fixture.runner.loop, to: SocketAddress(ip: "127.0.0.1", port: fixture.port),
                from: SocketAddress(ip: source, port: 0), timeoutMilliseconds: 5_000
            ) { result in connected = (try? result.get()) != nil }
            #expect(fixture.runner.run(until: { connected }))
            self.connected = connected
            try socket.startReading { [unowned self] event in
                switch event {
                case .data(let bytes): received += bytes.count
                case .end, .error: ended = true
                }
            }
            if !hello.isEmpty { try socket.write(hello) }
        }
    }

    /// The first flight of a node's TLS client: its ClientHello offering the node protocol.
    static func nodeHello(_ pki: TestPKI) throws -> [UInt8] {
        let context = try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: pki.identity(.node, "node-hello"),
                peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: pki.nodeCA.certificate)]),
                applicationProtocols: [TunnelProtocol.nodeALPN]))
        let client = try TLSConnection(context: context, serverHost: "localhost")
        _ = client.advanceHandshake()
        var hello: [UInt8] = []
        client.drainCiphertext(into: &hello)
        return hello
    }

    @Test(
        "with the nodes' places held by stalled handshakes, a node waits after its ClientHello, an admin still lists the nodes, and the node takes the next free place"
    )
    func adminGetsInDuringAStorm() throws {
        let door = try HostileDoorTests.Door {
            $0.admission.pendingHandshakes = 8
            $0.handshakeTimeout = .seconds(60)
        }
        var peers: [StalledPeer] = []
        defer {
            for peer in peers { peer.socket.close() }
            door.tearDown()
        }
        let hello = try Self.nodeHello(door.pki)
        for index in 1...7 { peers.append(try StalledPeer(door, source: "127.0.0.\(10 + index)", hello: hello)) }
        #expect(door.runner.run(until: { door.gateway.admission.pending.count == 7 }))
        #expect(peers.allSatisfy { !$0.ended }, "seven node handshakes hold the nodes' share")
        let waiting = try StalledPeer(door, source: "127.0.0.30", hello: hello)
        peers.append(waiting)
        #expect(door.runner.run(until: { door.gateway.admission.parkedCount == 1 }))
        #expect(waiting.received == 0 && !waiting.ended, "it waits, before any TLS byte")
        let admin = try door.operatorSession("root", roles: ["admin"])
        guard case .success = door.nodeList(admin) else {
            Issue.record("the admin's node list failed")
            return
        }
        #expect(peers.prefix(7).allSatisfy { !$0.ended }, "the stalled nodes were not evicted for the admin")
        // A stalled node gives up: the waiting one takes its place and gets the gateway's flight.
        peers[0].socket.close()
        #expect(door.runner.run(until: { waiting.received > 0 }))
        #expect(door.gateway.admission.parkedCount == 0 && !waiting.ended)
    }

    @Test("a connection that never says hello is closed at the handshake timeout and leaves no place held")
    func silentConnectionTimesOut() throws {
        let door = try HostileDoorTests.Door { $0.handshakeTimeout = .seconds(1) }
        defer { door.tearDown() }
        let silent = try StalledPeer(door, source: "127.0.0.40", hello: [])
        #expect(door.runner.run(until: { door.gateway.admission.greeting.count == 1 }))
        #expect(door.runner.run(until: { silent.ended }, timeout: .seconds(5)))
        #expect(door.gateway.admission.greeting.count == 0 && door.gateway.helloWaits.isEmpty)
        silent.socket.close()
    }
}
