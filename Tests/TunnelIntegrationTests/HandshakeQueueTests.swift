import Testing
import TunnelClient

@testable import TunnelGateway

/// Issue #11: during a reconnect storm, operators' handshakes go ahead of nodes', and nodes'
/// ahead of newcomers', a budget per loop turn (virtual clock in milliseconds).
/// A queue behind a reference, so `#expect` can call its mutating decisions.
private final class Door {
    var queue: HandshakeQueue<Int>
    init(perTurn: Int) { queue = HandshakeQueue(perTurn: perTurn) }
    func arrives(_ id: Int, _ priority: HandshakeQueue<Int>.Priority, at now: UInt64) -> Bool {
        queue.arrived(id, priority: priority, now: now)
    }
    func release(at now: UInt64) -> [Int] { queue.release(now: now) }
}

@Suite("Handshake queue")
struct HandshakeQueueTests {
    @Test("in a quiet turn a handshake goes on at once; past the budget it waits")
    func budgetPerTurn() {
        let door = Door(perTurn: 2)
        #expect(door.arrives(1, .node, at: 0))
        #expect(door.arrives(2, .node, at: 0))
        #expect(!door.arrives(3, .node, at: 0))
        #expect(door.release(at: 1) == [3])
        #expect(door.arrives(3, .node, at: 1), "a released handshake goes on when it is back at its ClientHello")
        #expect(door.arrives(4, .node, at: 1), "the turn's budget had room for one more")
        #expect(!door.arrives(5, .node, at: 1))
    }

    @Test("an operator arriving behind a storm of nodes and newcomers is released first")
    func operatorsFirst() {
        let door = Door(perTurn: 3)
        #expect((0..<3).allSatisfy { door.arrives($0, .node, at: 0) })
        #expect(!(10_000..<11_000).contains { door.arrives($0, .newcomer, at: 0) })
        #expect(!(10..<5_010).contains { door.arrives($0, .node, at: 1) })
        #expect(!door.arrives(7_000, .operator, at: 5), "the turn's budget is spent")
        #expect(door.release(at: 6) == [7_000, 10, 11])
        #expect(door.queue.longestWait[.operator] == 1)
        // Nodes, oldest first, then the newcomers.
        var released: [Int] = []
        var now: UInt64 = 6
        while door.queue.waitingCount > 0, now < 10_000 {
            now += 1
            released += door.release(at: now)
        }
        let expected = Array(12..<5_010) + Array(10_000..<11_000)
        #expect(released.count == expected.count, "\(released.count) released")
        #expect(
            released.count == expected.count && released == expected,
            "first difference at \(released.indices.first { released[$0] != expected[$0] } ?? -1)")
    }

    @Test("a newcomer never goes ahead of a waiting node, even with budget left in the turn")
    func noOvertaking() {
        let door = Door(perTurn: 2)
        #expect(door.arrives(1, .node, at: 0))
        #expect(door.arrives(2, .node, at: 0))
        #expect(!door.arrives(3, .node, at: 0))
        #expect(!door.arrives(4, .newcomer, at: 0))
        #expect(door.release(at: 1) == [3, 4])
        #expect(!door.arrives(5, .newcomer, at: 1), "the turn's budget went to the two released")
    }

    @Test("a handshake that closes while it waits is forgotten")
    func closedWhileWaiting() {
        let door = Door(perTurn: 1)
        #expect(door.arrives(1, .node, at: 0))
        #expect(!door.arrives(2, .node, at: 0))
        #expect(!door.arrives(3, .node, at: 0))
        door.queue.closed(2)
        #expect(door.queue.waitingCount == 1)
        #expect(door.release(at: 1) == [3])
        #expect(door.queue.waitingCount == 0)
    }

    @Test("the priority is the first protocol offered that the gateway serves")
    func priorityFromALPN() {
        #expect(Gateway.handshakePriority(["tunnel-operator/1", "tunnel-node/1"]) == .operator)
        #expect(Gateway.handshakePriority(["h2", "tunnel-node/1"]) == .node)
        #expect(Gateway.handshakePriority(["tunnel-enroll/1"]) == .newcomer)
        #expect(Gateway.handshakePriority(["h2"]) == .newcomer)
    }

    @Test("with a budget of one handshake a turn, twenty nodes starting at once all come online, some after waiting")
    func heldHandshakesResume() throws {
        let fixture = try GatewayFixture { configuration, _ in configuration.admission.handshakesPerTurn = 1 }
        defer { fixture.tearDown() }
        let names = (1...20).map { "node-\($0)" }
        for name in names { try fixture.startNode(try fixture.pki.identity(.node, name)) }
        #expect(fixture.runner.run(until: { names.allSatisfy(fixture.online) }, timeout: .seconds(30)))
        #expect(fixture.gateway.handshakes.waitingCount == 0)
        #expect(fixture.gateway.handshakes.longestWait[.node] != nil, "some handshakes were held and taken up again")
    }
}
