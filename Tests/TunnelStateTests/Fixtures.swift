import Foundation
import PostgresTestServer
import Testing
import TunnelState
import TunnelWire

/// A fresh private directory for one test's database files, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "tunnel-state-test-" + UUID().uuidString
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
    }

    /// The path of a database file inside the directory.
    var database: String { path + "/state.db" }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The permission bits of the file at `path`.
func fileMode(_ path: String) throws -> Int {
    try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// A fake lowercase-hex SHA-256 derived from `seed`; the store treats hashes as opaque text.
func hexHash(_ seed: String) -> String {
    let hex = Array(seed.utf8).map { String($0, radix: 16) }.joined()
    return String((hex + String(repeating: "0", count: 64)).prefix(64))
}

enum Sample {
    static let now: Int64 = 1_750_000_000

    static let enrolledNode = NodeEntry(
        name: "edge-zürich-01",
        labels: ["région": "Zürich 🏔", "env": "prod", "": "empty key", "quote\"": "line\nbreak"],
        keySHA256: hexHash("key-1"),
        certificateSerial: "7a3f01",
        certificateNotAfter: now + 86_400,
        enrolledAt: now - 3_600,
        enrolledWithToken: "tok-1",
        lastSeen: now - 5,
        lastAddress: "[2001:db8::1]:51234",
        lastDisconnectReason: "idle timeout",
        revokedAt: now,
        revokedBy: "alice"
    )

    /// A node seen connecting but never enrolled: every optional left nil.
    static let seenNode = NodeEntry(name: "a-first-in-order")

    static func token(id: String = "tok-1", uses: Int = 1, expiresAt: Int64 = now + 3_600) -> TokenEntry {
        TokenEntry(
            id: id,
            secretSHA256: hexHash("secret-\(id)"),
            nodeName: nil,
            namePrefix: "edge-",
            labels: ["site": "Köln"],
            createdAt: now - 60,
            expiresAt: expiresAt,
            usesAllowed: uses,
            createdBy: "alice"
        )
    }

    static let namedToken = TokenEntry(
        id: "tok-0-named",
        secretSHA256: hexHash("secret-named"),
        nodeName: "edge-7",
        namePrefix: nil,
        labels: [:],
        createdAt: now,
        expiresAt: now + 60,
        usesAllowed: 3,
        usesCount: 2,
        createdBy: "ops-bot"
    )

    static let admin = UserEntry(
        name: "alice",
        roles: ["admin", "viewer", "ünïcode"],
        createdAt: now - 86_400,
        createdBy: "bootstrap",
        certificateSerial: "01ff",
        certificateNotAfter: now + 7 * 86_400,
        revokedAt: now,
        revokedBy: "bob"
    )

    static let viewer = UserEntry(name: "bob", roles: [], createdAt: now, createdBy: "alice")
}

/// The store implementations every FleetStore test runs against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres

    /// SQLite always; PostgreSQL where its binaries are installed, and always in CI (where a
    /// missing server then fails the tests instead of skipping them).
    static var tested: [StoreKind] {
        PostgresTestServer.shouldRun ? [.sqlite, .postgres] : [.sqlite]
    }

    var testDescription: String { rawValue }
}

/// A fresh, empty database of one kind; `open()` makes another connection to the same data.
struct FreshStore {
    let kind: StoreKind
    /// The SQLite file's path or the PostgreSQL URL.
    let location: String
    /// The PostgreSQL database name (nil for SQLite).
    let databaseName: String?
    private let directory: TemporaryDirectory?

    init(_ kind: StoreKind) throws {
        self.kind = kind
        switch kind {
        case .sqlite:
            let directory = try TemporaryDirectory()
            self.directory = directory
            location = directory.database
            databaseName = nil
        case .postgres:
            let server = try PostgresTestServer.shared()
            let name = try server.freshDatabase()
            directory = nil
            databaseName = name
            location = server.url(database: name)
        }
    }

    func open() throws -> FleetStore {
        switch kind {
        case .sqlite: try SQLiteFleetStore(path: location)
        case .postgres: try PostgresFleetStore(url: location)
        }
    }

    func remove() {
        directory?.remove()
    }
}
