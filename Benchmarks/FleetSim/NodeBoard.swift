import Foundation

/// Which virtual nodes are connected, shared by all loops: operators pick online nodes from it,
/// and judge a reset by it (a node that was dropped on purpose explains `node-disconnected`).
///
/// `@unchecked Sendable` is sound because `rows` is reached only under `lock`.
final class NodeBoard: @unchecked Sendable {
    struct Row {
        var online = false
        /// Bumped at every deliberate drop (flap), so a stream knows its node was flapped.
        var flaps = 0
        var sessions = 0
        var lastConnectUnix = 0.0
        var lastDisconnectUnix = 0.0
    }

    private let lock = NSLock()
    private var rows: [Row]
    let names: [String]

    init(names: [String]) {
        self.names = names
        rows = Array(repeating: Row(), count: names.count)
    }

    var count: Int { names.count }

    func connected(_ index: Int) {
        let now = Date().timeIntervalSince1970
        lock.withLock {
            rows[index].online = true
            rows[index].sessions += 1
            rows[index].lastConnectUnix = now
        }
    }

    func disconnected(_ index: Int, flapped: Bool) {
        let now = Date().timeIntervalSince1970
        lock.withLock {
            rows[index].online = false
            rows[index].lastDisconnectUnix = now
            if flapped { rows[index].flaps += 1 }
        }
    }

    func row(_ index: Int) -> Row { lock.withLock { rows[index] } }

    /// A random online node, or nil when none is.
    func pickOnline(using generator: inout some RandomNumberGenerator) -> (index: Int, flaps: Int)? {
        lock.withLock {
            guard !rows.isEmpty else { return nil }
            let start = Int.random(in: 0..<rows.count, using: &generator)
            for step in 0..<rows.count {
                let index = (start + step) % rows.count
                if rows[index].online { return (index, rows[index].flaps) }
            }
            return nil
        }
    }

    var onlineCount: Int { lock.withLock { rows.reduce(0) { $0 + ($1.online ? 1 : 0) } } }

    /// One line per node: name, online, sessions, flaps, last connect and disconnect (Unix seconds).
    func stateText() -> String {
        lock.withLock {
            zip(names, rows).map { name, row in
                "\(name) \(row.online ? "online" : "offline") \(row.sessions) \(row.flaps) "
                    + String(format: "%.3f %.3f", row.lastConnectUnix, row.lastDisconnectUnix)
            }.joined(separator: "\n") + "\n"
        }
    }
}
