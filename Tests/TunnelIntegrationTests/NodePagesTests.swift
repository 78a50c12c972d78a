import Testing
import TunnelRuntime
import TunnelState

@testable import TunnelOperator

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

/// One request, several pages (`listNodes(pages:)`), read a line at a time; and the same reader
/// takes the one page without a newline that a gateway older than `pages` sends.
@Suite("Node list pages in one reply", .serialized)
struct NodePagesInOneReplyTests {
    /// Reads one request's reply: its pages, and where the next request would start.
    private func read(_ request: OperatorRequest, _ scenario: TunnelTests.Scenario) throws -> (
        pages: [NodeList], next: Result<String?, OperatorFailure>?
    ) {
        let (operatorClient, connection) = try scenario.operatorOnceOnline("node-17")
        defer { operatorClient.close() }
        var pages: [NodeList] = []
        var next: Result<String?, OperatorFailure>?
        let reader = NodeListReader(connection: connection, page: { pages.append($0) }, completion: { next = $0 })
        reader.stream = try connection.openStream(
            metadata: TunnelProtocol.encode(request), interactive: false, handler: reader)
        #expect(scenario.runner.run(until: { next != nil }))
        return (pages, next)
    }

    @Test("2,501 nodes, two pages of 1,000 asked: both in one reply, and where the third starts")
    func twoPagesInOneReply() throws {
        let scenario = try TunnelTests.Scenario()
        defer { scenario.tearDown() }
        try scenario.pki.fleet.store.saveNodes((0..<2_500).map { NodeEntry(name: "sim-\($0 + 10_000)") })
        let (pages, next) = try read(.listNodes(after: nil, limit: 1_000, pages: 2), scenario)
        #expect(pages.map(\.nodes.count) == [1_000, 1_000])
        // node-17 sorts first; the second page ends at sim-11998.
        #expect(try next?.get() == "sim-11998")
        #expect(pages.last?.next == "sim-11998")
        #expect(pages.first?.gatewayTime != nil)
    }

    @Test("a reply of one page and no newline (a gateway older than pages) is read as one page")
    func onePageWithoutNewline() throws {
        let scenario = try TunnelTests.Scenario()
        defer { scenario.tearDown() }
        try scenario.pki.fleet.store.saveNodes((0..<30).map { NodeEntry(name: "n-\($0 + 10)") })
        let (pages, next) = try read(.listNodes(after: nil, limit: 5), scenario)
        #expect(pages.map { $0.nodes.map(\.name) } == [["n-10", "n-11", "n-12", "n-13", "n-14"]])
        #expect(try next?.get() == "n-14")
    }
}

/// `tunnel node ls` (admin socket or an admin operator) pages the same way; doctor asks for one node.
@Suite("Admin node list pages and small pages", .serialized)
struct AdminNodePagesTests {
    @Test("node ls over the admin request: 2,501 nodes in pages of at most 1,000, each once and in name order")
    func adminPages() throws {
        let scenario = try TunnelTests.Scenario()
        defer { scenario.tearDown() }
        try scenario.pki.fleet.store.saveNodes((0..<2_500).map { NodeEntry(name: "sim-\($0 + 10_000)") })
        _ = try scenario.operatorOnceOnline("node-17")
        var pages: [[NodeStatus]] = []
        var after: String?
        for _ in 0..<10 {
            guard
                case .nodes(let nodes, let next) = scenario.gateway.administer(
                    .listNodes(after: after, limit: after == nil ? 5_000 : nil), actor: "test")
            else {
                Issue.record("not a node list")
                return
            }
            pages.append(nodes)
            guard let next else { break }
            after = next
        }
        #expect(pages.map(\.count) == [1_000, 1_000, 501])
        let names = pages.flatMap { $0 }.map(\.name)
        #expect(names == names.sorted() && Set(names).count == 2_501)
        #expect(pages.flatMap { $0 }.first { $0.name == "node-17" }?.online == true)
    }

    @Test("a page of one node (tunnel doctor's) carries the gateway's time and where the next starts")
    func pageOfOne() throws {
        let scenario = try TunnelTests.Scenario()
        defer { scenario.tearDown() }
        try scenario.pki.fleet.store.saveNodes((0..<300).map { NodeEntry(name: "n-\($0 + 100)") })
        let (operatorClient, connection) = try scenario.operatorOnceOnline("node-17")
        var one: Result<NodeList, OperatorFailure>?
        operatorClient.ask(.listNodes(after: nil, limit: 1), on: connection, reply: NodeList.self) { one = $0 }
        var last: Result<NodeList, OperatorFailure>?
        operatorClient.ask(.listNodes(after: "n-398", limit: 1), on: connection, reply: NodeList.self) { last = $0 }
        #expect(scenario.runner.run(until: { one != nil && last != nil }))
        #expect(try one?.get().nodes.map(\.name) == ["n-100"])
        #expect(try one?.get().next == "n-100")
        #expect(try one?.get().gatewayTime != nil)
        #expect(try last?.get().nodes.map(\.name) == ["n-399"])
        // n-399 was followed by node-17, the last name: one more page, then none.
        #expect(try last?.get().next == "n-399")
        operatorClient.close()
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
