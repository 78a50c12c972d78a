import Testing
import TunnelGatewayCore

/// Each operator's share of a node's streams, decided on its own.
@Suite("GatewayCore: stream share")
struct StreamShareTests {
    @Test("an operator's budget on a node, the admins' reserve and the node's capacity")
    func streamShare() {
        var share = StreamShare(limits: testLimits)
        func decide(_ name: String, admin: Bool = false) -> StreamShare.Decision {
            share.decide(node: "node-17", operatorName: name, isAdmin: admin, nodeCapacity: 6)
        }
        for _ in 0..<3 {
            #expect(decide("mallory") == .admit)
            share.opened(node: "node-17", operatorName: "mallory")
        }
        #expect(decide("mallory") == .operatorBudget(open: 3))
        #expect(decide("bob") == .admit)
        share.opened(node: "node-17", operatorName: "bob")
        #expect(decide("carol") == .nodeBusy(open: 4), "the last two are the admins'")
        #expect(decide("root", admin: true) == .admit)
        share.opened(node: "node-17", operatorName: "root")
        share.opened(node: "node-17", operatorName: "root")
        #expect(decide("root", admin: true) == .nodeBusy(open: 6))
        #expect(share.decide(node: "node-18", operatorName: "mallory", isAdmin: false, nodeCapacity: 6) == .admit)
        share.closed(node: "node-17", operatorName: "mallory")
        #expect(decide("mallory") == .nodeBusy(open: 5))
        #expect(share.openStreams(on: "node-17") == 5)
    }
}
