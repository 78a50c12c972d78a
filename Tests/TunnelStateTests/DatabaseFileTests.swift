import CSQLite
import Foundation
import PostgresTestServer
import Testing
import TunnelState
import TunnelWire

@Suite("Database file")
struct DatabaseFileTests {
    @Test(arguments: StoreKind.tested) func everythingSurvivesReopening(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let token = Sample.token(uses: 2)
        do {
            let store = try fresh.open()
            try store.saveNode(Sample.enrolledNode)
            try store.saveNode(Sample.seenNode)
            try store.insertToken(token)
            try store.saveUser(Sample.admin)
            _ = try store.redeemToken(
                id: token.id, secretSHA256: token.secretSHA256, keySHA256: hexHash("key-a"), nodeName: "node-a",
                now: Sample.now)
        }
        let store = try fresh.open()
        #expect(try store.nodes() == [Sample.seenNode, Sample.enrolledNode])
        #expect(try store.users() == [Sample.admin])
        #expect(try store.tokens().map(\.usesCount) == [1])
        #expect(
            try store.redeemToken(
                id: token.id, secretSHA256: token.secretSHA256, keySHA256: hexHash("key-a"), nodeName: "node-a",
                now: Sample.now) == .alreadyRedeemed(nodeName: "node-a"))
    }

    @Test func filesAreReadableOnlyByTheOwner() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let store = try SQLiteFleetStore(path: directory.database)
            try store.saveUser(Sample.admin)
            #expect(try fileMode(directory.database) == 0o600)
            // SQLite gives its write-ahead log the mode of the database file.
            #expect(try fileMode(directory.database + "-wal") == 0o600)
        }

        // An existing, empty file (a valid empty database) that is too open is narrowed.
        let existing = directory.path + "/existing.db"
        #expect(FileManager.default.createFile(atPath: existing, contents: nil, attributes: [.posixPermissions: 0o644]))
        #expect(try fileMode(existing) == 0o644)
        _ = try SQLiteFleetStore(path: existing)
        #expect(try fileMode(existing) == 0o600)
    }

    @Test func aDatabaseFromANewerTunnelIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let store = try SQLiteFleetStore(path: directory.database)
            try store.saveNode(Sample.seenNode)
        }
        var handle: OpaquePointer?
        #expect(sqlite3_open(directory.database, &handle) == SQLITE_OK)
        #expect(sqlite3_exec(handle, "PRAGMA user_version = 99", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(handle)

        let error = #expect(throws: StoreError.self) { try SQLiteFleetStore(path: directory.database) }
        #expect(
            error?.message
                == "state database \(directory.database) was written by a newer tunnel (schema 99); upgrade tunnel or restore a backup"
        )
    }

    @Test(.enabled(if: PostgresTestServer.shouldRun)) func aPostgresDatabaseFromANewerTunnelIsRefused() throws {
        let fresh = try FreshStore(.postgres)
        try fresh.open().saveNode(Sample.seenNode)
        try PostgresTestServer.shared().execute(
            "UPDATE tunnel_schema SET version = 99", database: try #require(fresh.databaseName))

        let error = #expect(throws: StoreError.self) { try fresh.open() }
        #expect(
            error?.message
                == "state database \(fresh.location) was written by a newer tunnel (schema 99); upgrade tunnel or restore a backup"
        )
    }

    @Test(.enabled(if: PostgresTestServer.shouldRun)) func anUnreachablePostgresServerIsNamedWithoutThePassword() throws
    {
        let server = try PostgresTestServer.shared()
        let url = "postgres://tunnel:s3cret@127.0.0.1:\(server.port)/no_such_database"
        let error = #expect(throws: StoreError.self) { try PostgresFleetStore(url: url) }
        #expect(
            error?.message.hasPrefix(
                "state database postgres://tunnel@127.0.0.1:\(server.port)/no_such_database: could not connect (")
                == true)
        #expect(error?.message.contains("no_such_database\" does not exist") == true)
        #expect(error?.message.contains("s3cret") == false)
    }

    @Test func aFileThatIsNotADatabaseIsRefusedAndLeftAlone() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        #expect(FileManager.default.createFile(atPath: directory.database, contents: garbage))

        let error = #expect(throws: StoreError.self) { try SQLiteFleetStore(path: directory.database) }
        #expect(error?.message.contains(directory.database) == true)
        #expect(error?.message.contains("not an intact tunnel state database") == true)
        #expect(FileManager.default.contents(atPath: directory.database) == garbage)
    }

    @Test func aMissingDirectoryIsNamedInTheError() throws {
        let path = "/nonexistent-tunnel-dir/state.db"
        let error = #expect(throws: StoreError.self) { try SQLiteFleetStore(path: path) }
        #expect(error?.message.contains(path) == true)
        #expect(error?.message.contains("No such file or directory") == true)
    }
}
