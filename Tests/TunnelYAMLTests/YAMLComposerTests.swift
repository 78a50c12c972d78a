import Testing
import TunnelYAML

@Suite struct YAMLComposerTests {
    @Test func composesMappingsListsAndScalarsWithLines() throws {
        let text = """
            # a comment
            gateway: gw.example.com:7443
            services:
              ssh: 127.0.0.1:22
              quoted: "null"
            list:
              - one
              - ~
            """
        let root = try #require(try YAMLComposer.compose(text))
        #expect(root.line == 2)
        #expect(root["gateway"]?.string == "gw.example.com:7443")
        #expect(root.mapping?.first?.key.line == 2)
        let services = try #require(root["services"])
        #expect(services.line == 4)
        #expect(services["ssh"]?.string == "127.0.0.1:22")
        #expect(services["quoted"]?.isNull == false)
        #expect(root["list"]?.sequence?.map(\.isNull) == [false, true])
        #expect(root["missing"] == nil)
    }

    @Test func keepsDuplicateKeysForTheReaderToRefuse() throws {
        let root = try #require(try YAMLComposer.compose("a: 1\na: 2\n"))
        #expect(root.mapping?.map(\.key.line) == [1, 2])
    }

    @Test func emptyTextHasNoRoot() throws {
        #expect(try YAMLComposer.compose("") == nil)
        #expect(try YAMLComposer.compose("# only a comment\n") == nil)
    }

    @Test func booleansArePlainYAML11Words() throws {
        let root = try #require(try YAMLComposer.compose("a: true\nb: Off\nc: \"true\"\nd: truthy\n"))
        #expect(root["a"]?.bool == true)
        #expect(root["b"]?.bool == false)
        #expect(root["c"]?.bool == nil)
        #expect(root["d"]?.bool == nil)
    }

    @Test func syntaxErrorsNameTheLine() {
        #expect(throws: YAMLError(line: 2, problem: "mapping values are not allowed in this context")) {
            try YAMLComposer.compose("a: b\nc: d: e\n")
        }
    }

    @Test func refusesAliasesDepthAndSecondDocuments() {
        #expect(throws: YAMLError.self) { try YAMLComposer.compose("a: &x [1, 2]\nb: *x\n") }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: YAMLError(line: 1, problem: "nested deeper than 32 levels")) { try YAMLComposer.compose(deep) }
        #expect(throws: YAMLError(line: 2, problem: "a second document (---); a file holds one")) {
            try YAMLComposer.compose("a: 1\n---\nb: 2\n")
        }
        var small = YAMLComposer.Limits()
        small.nodes = 3
        #expect(throws: YAMLError(line: 1, problem: "more than 3 values")) {
            try YAMLComposer.compose("[1, 2, 3, 4]", limits: small)
        }
    }
}
