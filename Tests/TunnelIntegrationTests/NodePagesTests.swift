import Testing
import TunnelOperator
import TunnelRuntime
import TunnelState

/// `tunnel nodes` reads the list a page at a time: every node once, by name, each reply bounded.
@Suite("Node list pages", .serialized)
struct NodePagesTests {
    @Test("2,501 nodes come in three pages of at most 1,000, each once and in name order")
    func pagesCoverTheFleet() throws {
        let scenario = try TunnelTests.Scenario()
        defer { scenario.tearDown() }
        try scenario.pki.fleet.store.saveNodes(
            (0..<2_500).map {
                NodeEntry(name: "sim-\(String($0, radix: 10).leftPadded(to: 5))", labels: ["site": "plant-a"])
            })
        let (operatorClient, connection) = try scenario.operatorOnceOnline("node-17")
        var pages: [NodeList] = []
        var ended: OperatorFailure??
        operatorClient.listNodes(on: connection) {
            pages.append($0)
        } completion: {
            ended = .some($0)
        }
        #expect(scenario.runner.run(until: { ended != nil }))
        if case .some(.some(let failure)) = ended { Issue.record("the list failed: \(failure.message)") }
        #expect(pages.map(\.nodes.count) == [1_000, 1_000, 501])
        #expect(pages.map { $0.next != nil } == [true, true, false])
        let names = pages.flatMap(\.nodes).map(\.name)
        #expect(names == names.sorted() && Set(names).count == 2_501)
        #expect(pages.flatMap(\.nodes).first { $0.name == "node-17" }?.online == true)
        operatorClient.close()
    }

    @Test("a page larger than the gateway's bound is cut to it; a page after the last name is empty")
    func boundedPages() throws {
        let scenario = try TunnelTests.Scenario()
        defer { scenario.tearDown() }
        try scenario.pki.fleet.store.saveNodes((0..<1_200).map { NodeEntry(name: "n-\($0)") })
        let (operatorClient, connection) = try scenario.operatorOnceOnline("node-17")
        var big: Result<NodeList, OperatorFailure>?
        operatorClient.ask(.listNodes(after: nil, limit: 1_000_000), on: connection, reply: NodeList.self) { big = $0 }
        var past: Result<NodeList, OperatorFailure>?
        operatorClient.ask(.listNodes(after: "zzz", limit: 10), on: connection, reply: NodeList.self) { past = $0 }
        #expect(scenario.runner.run(until: { big != nil && past != nil }))
        #expect(try big?.get().nodes.count == NodeList.maximumPage)
        #expect(try big?.get().next != nil)
        #expect(try past?.get().nodes.isEmpty == true)
        #expect(try past?.get().next == nil)
        operatorClient.close()
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
