import Testing
import TunnelState

@Suite("Entries round-trip")
struct EntryTests {
    @Test(arguments: StoreKind.tested) func nodesRoundTripAndAreSortedByName(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()

        #expect(try store.node(named: Sample.enrolledNode.name) == nil)
        try store.saveNode(Sample.enrolledNode)
        try store.saveNode(Sample.seenNode)
        #expect(try store.node(named: Sample.enrolledNode.name) == Sample.enrolledNode)
        #expect(try store.node(named: Sample.seenNode.name) == Sample.seenNode)
        #expect(try store.nodes() == [Sample.seenNode, Sample.enrolledNode])

        // Saving under an existing name replaces the whole entry, including clearing fields.
        var renewed = Sample.enrolledNode
        renewed.certificateSerial = "7a3f02"
        renewed.revokedAt = nil
        renewed.revokedBy = nil
        try store.saveNode(renewed)
        #expect(try store.node(named: renewed.name) == renewed)
        #expect(try store.nodes().count == 2)
    }

    @Test(arguments: StoreKind.tested) func tokensRoundTripAndDuplicateIdsAreRefused(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()

        try store.insertToken(Sample.token())
        try store.insertToken(Sample.namedToken)
        #expect(try store.tokens() == [Sample.namedToken, Sample.token()])

        var duplicate = Sample.token()
        duplicate.usesAllowed = 99
        let error = #expect(throws: StoreError.self) { try store.insertToken(duplicate) }
        #expect(error?.message.contains("token tok-1 already exists") == true)
        #expect(error?.message.contains(fresh.location) == true)
        #expect(try store.tokens() == [Sample.namedToken, Sample.token()])
    }

    @Test(arguments: StoreKind.tested) func usersRoundTripAndAreSortedByName(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()

        #expect(try store.user(named: "alice") == nil)
        try store.saveUser(Sample.viewer)
        try store.saveUser(Sample.admin)
        #expect(try store.user(named: "alice") == Sample.admin)
        #expect(try store.user(named: "bob") == Sample.viewer)
        #expect(try store.users() == [Sample.admin, Sample.viewer])

        var promoted = Sample.viewer
        promoted.roles = ["admin"]
        try store.saveUser(promoted)
        #expect(try store.users() == [Sample.admin, promoted])
    }

    @Test(arguments: StoreKind.tested) func removeReportsWhetherAnEntryExisted(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        try store.saveNode(Sample.seenNode)
        try store.insertToken(Sample.token())

        #expect(try store.removeNode(named: Sample.seenNode.name))
        #expect(try !store.removeNode(named: Sample.seenNode.name))
        #expect(try store.nodes().isEmpty)
        #expect(try store.removeToken(id: "tok-1"))
        #expect(try !store.removeToken(id: "tok-1"))
        #expect(try store.tokens().isEmpty)
    }
}
