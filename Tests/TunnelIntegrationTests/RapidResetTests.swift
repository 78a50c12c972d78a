import Foundation
import Multiplex
import Testing
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Rapid open-and-reset (CVE-2023-44487) through the gateway: the abusive operator is the one
/// closed, the node's session and everyone else's streams survive.
@Suite("Rapid reset through the gateway", .serialized)
struct RapidResetTests {
    final class Scenario: GatewayFixture {
        var nodeDrops = 0

        init() throws {
            try super.init()
            let node = try startNode(try pki.identity(.node, "node-17"))
            node.onStateChange = { [unowned self] up, _ in if !up { nodeDrops += 1 } }
            #expect(runner.run(until: { self.online("node-17") }))
        }

        func attacker(_ name: String) throws -> WirePeer {
            var peer: WirePeer??
            try WirePeer.dial(
                loop: runner.loop, port: port, identity: try pki.identity(.operator, name),
                gatewayCA: pki.nodeCA.certificate, protocols: [TunnelProtocol.operatorALPN]
            ) { peer = .some($0) }
            runner.run(until: { peer != nil && (peer!!.isEstablished || peer!!.ended) })
            let attacker = try #require(peer ?? nil)
            attacker.send(.helloV1)
            return attacker
        }

        /// Opens a stream to node-17's echo service, waits until the gateway accepted it (so the
        /// node has dialed its service: work started) or refused it, then resets it. Returns false once the
        /// attacker's connection is gone.
        func openAndReset(_ attacker: WirePeer, id: StreamID) throws -> Bool {
            let metadata = try TunnelProtocol.encode(OperatorRequest.connect(node: "node-17", service: "echo"))
            attacker.send(.open(id, metadata: metadata[...], interactive: false, fin: false))
            runner.run(
                until: { attacker.accepted(id) || attacker.resets[id] != nil || attacker.ended }, timeout: .seconds(5))
            attacker.send(.reset(id, .cancel))
            return !attacker.ended && attacker.goAways.isEmpty
        }
    }

    @Test("an operator that opens and resets streams to a node is disconnected; the node stays up")
    func oneAbusiveOperator() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let connectedSince = scenario.gateway.nodeStatuses().first { $0.name == "node-17" }?.connectedSince
        let attacker = try scenario.attacker("mallory")
        var id: StreamID = 1
        for _ in 0..<300 {
            guard try scenario.openAndReset(attacker, id: id) else { break }
            id += 2
        }
        scenario.runner.run(until: { !attacker.goAways.isEmpty })
        #expect(attacker.goAways == [.enhanceYourCalm], "the abusive operator's own connection is closed")
        #expect(id < 300, "cut off long before 150 cycles")
        attacker.close()
        // The node's session is the same one, and another operator works through it.
        #expect(scenario.nodeDrops == 0)
        #expect(scenario.gateway.nodeStatuses().first { $0.name == "node-17" }?.connectedSince == connectedSince)
        let bob = try #require(try scenario.connectOperator(try scenario.pki.identity(.operator, "bob"))?.get())
        #expect(try scenario.echoThrough(bob, node: "node-17") == nil)
    }

    @Test("three operators each under their own limit cannot drop the node together")
    func colludingOperators() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let attackers = try ["m1", "m2", "m3"].map { try scenario.attacker($0) }
        var refused = 0
        for round in 0..<80 {
            for attacker in attackers where !attacker.ended {
                let id = StreamID(2 * round + 1)
                _ = try scenario.openAndReset(attacker, id: id)
                if attacker.resets[id] == .enhanceYourCalm { refused += 1 }
            }
        }
        #expect(refused > 0, "once the node's share is spent, resetting operators are refused")
        #expect(scenario.nodeDrops == 0)
        let bob = try #require(try scenario.connectOperator(try scenario.pki.identity(.operator, "bob"))?.get())
        #expect(try scenario.echoThrough(bob, node: "node-17") == nil)
        for attacker in attackers { attacker.close() }
    }

    @Test("an honest operator refused 300 times in 10 s keeps its connection")
    func refusalsAreNotAbuse() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let alice = try #require(try scenario.connectOperator(try scenario.pki.identity(.operator, "alice"))?.get())
        for _ in 0..<300 {
            #expect(try scenario.echoThrough(alice, node: "node-99") != nil)
        }
        // (Past the gateway's per-operator record rate its refusals say so instead; the
        // connection stays all the same.)
        #expect(alice.isEstablished)
    }
}
