import Testing

@testable import TunnelCommands

@Suite struct NodeLabelCommandTests {
    @Test("key=value sets, key- removes, anything else or a bad name is a usage error")
    func parse() throws {
        let (set, remove) = try NodeLabelCommand.parse(["tier=gold", "example.com/rack=r1", "env-", "empty="])
        #expect(set == ["tier": "gold", "example.com/rack": "r1", "empty": ""])
        #expect(remove == ["env"])
        for bad in [[], ["tier"], ["ti er=x"], ["tier=go ld"], ["\u{1b}[2J-"]] {
            #expect(throws: CommandFailure.self) { try NodeLabelCommand.parse(bad) }
        }
    }
}
