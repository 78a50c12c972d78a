import Glibc
import Multiplex

/// The gateway's limits before authentication and on its share of a node. Each is a setting
/// (`docs/TUNNEL.md` §7 says what a peer gets when it hits one).
public struct AdmissionLimits: Sendable, Equatable {
    /// TLS handshakes in progress, all sources together; beyond it the oldest handshake of the
    /// source holding the most is dropped.
    public var pendingHandshakes = 256
    /// TLS handshakes in progress from one source (IPv4 address or IPv6 /64).
    public var pendingHandshakesPerSource = 32
    /// Connections waiting for their ClientHello, which says whether an operator or a node is
    /// coming, before a place among the handshakes is charged, or, hello in, for a free place
    /// among the handshakes (built in, not a setting; per source the handshake cap applies).
    /// Waiting costs a socket and the bytes read so far, no TLS, so the pool is four times the
    /// handshakes. A hello that came with its connect needs no place unless it must wait.
    public var helloWaits = 1024
    /// TLS handshakes begun per loop turn, operators first, then nodes, then enrollments
    /// (`HandshakeQueue`); the rest wait after their ClientHello for the next turn.
    public var handshakesPerTurn = 8
    /// New connections taken from the kernel's accept queue per loop turn, and none more once
    /// `Gateway.acceptTurnNanoseconds` went by since the turn's first (`AcceptBudget`).
    public var acceptsPerTurn = 256
    /// Enrollment connections (no certificate needed), all sources together.
    public var enrollmentConnections = 64
    public var enrollmentConnectionsPerSource = 8
    /// An enrollment connection is closed this long after it was accepted, whatever it does.
    public var enrollmentDeadline: Duration = .seconds(15)
    /// New connections a source may make a minute (a burst of ten seconds' worth); one that
    /// authenticates as a node or operator is given back, so only anonymous ones use it up.
    public var connectionsPerSourcePerMinute = 1200
    /// Enrollment requests a source may make a minute.
    public var enrollmentsPerSourcePerMinute = 30
    /// Refusals are summed per source (and per operator) over this interval, then audited as one record.
    public var refusalSummaryInterval: Duration = .seconds(60)
    /// Concurrent streams one operator may have open to one node (admins are not limited by it).
    public var streamsPerOperatorPerNode = 20
    /// Of a node's streams, this many are kept for operators whose role has `admin: true`.
    public var adminReservedStreamsPerNode = 10
    /// Stream opens and denials of one operator audited one by one per minute; beyond that opens
    /// are refused and denials counted into the minute's summary.
    public var streamRecordsPerOperatorPerMinute = 600

    public init() {}

    /// The fewest places the hello pool is cut to where open files are scarce.
    static let fewestHelloWaits = 128

    /// Why these limits cannot work with `descriptorLimit` open files (nil if they can): the
    /// anonymous caps must leave at least half the descriptors to authenticated peers, with the
    /// hello pool at its fewest (`fitted` cuts it to what is left).
    public func problem(descriptorLimit: Int) -> String? {
        let helloWaits = min(helloWaits, Self.fewestHelloWaits)
        let anonymous = helloWaits + pendingHandshakes + enrollmentConnections
        guard anonymous * 2 <= descriptorLimit else {
            return
                "max-pending-handshakes + max-enrollment-connections + \(helloWaits) connections awaiting their ClientHello (\(anonymous)) must be at most half the open-file limit (\(descriptorLimit)), so nodes and operators always find a descriptor; raise `ulimit -n` or lower them"
        }
        return nil
    }

    /// These limits with the hello pool cut to what `descriptorLimit` open files allow: the
    /// anonymous caps together use at most half of them, and the hello pool takes what the
    /// handshakes and enrollments leave, but no fewer than `fewestHelloWaits`.
    public func fitted(toDescriptorLimit descriptorLimit: Int) -> AdmissionLimits {
        var fitted = self
        let room = descriptorLimit / 2 - pendingHandshakes - enrollmentConnections
        fitted.helloWaits = min(helloWaits, max(Self.fewestHelloWaits, room))
        return fitted
    }

    /// Of `pendingHandshakes`, an eighth is kept for ClientHellos offering the operator protocol,
    /// so an admin finds a place while a fleet reconnects (built in, not a setting).
    var operatorReservedHandshakes: Int { pendingHandshakes / 8 }
    var enrollmentDeadlineMilliseconds: UInt64 { enrollmentDeadline.wholeMilliseconds }
    var refusalIntervalMilliseconds: UInt64 { refusalSummaryInterval.wholeMilliseconds }
}

/// What the gateway may know of a connection before it authenticates: where it comes from.
/// Limits apply per IPv4 address and per IPv6 /64 (one customer's usual allocation), so a
/// peer cannot multiply its share by walking through its own prefix.
func admissionSourceKey(ip: String) -> String {
    var v6 = in6_addr()
    guard ip.contains(":"), inet_pton(AF_INET6, ip, &v6) == 1 else { return ip }
    let bytes = withUnsafeBytes(of: &v6) { Array($0) }
    // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
    if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
        return bytes[12...].map(String.init).joined(separator: ".")
    }
    let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
    return groups.joined(separator: ":") + "::/64"
}

/// Connections that have not authenticated, capped in total and per source. At the total cap a
/// newcomer takes the place of the oldest connection of a source holding at least two more than
/// its own; otherwise it gets no place. So a flood fills only its own share and is turned away
/// at the door, before any TLS work, while the lone operator from another address finds a place.
/// An eviction must leave the two sources more even than before: where every source holds one
/// (a fleet reconnecting at once, each node from its own address), evicting would only swap
/// who holds the place, and a storm of newcomers would throw away every handshake before it
/// finished. Refused instead, the node's jittered backoff spreads the storm.
///
/// Every decision is O(1) in the number of sources (a storm brings thousands): sources are kept
/// by how many places they hold, so the heaviest count is known without a walk, and only the
/// sources holding that many are compared when an eviction is possible at all.
struct AnonymousPool<ID: Hashable> {
    let total: Int
    let perSource: Int
    private(set) var entries: [ID: (source: String, since: UInt64)] = [:]
    /// Oldest first; at most `perSource` each.
    private var bySource: [String: [ID]] = [:]
    /// Sources by the number of places they hold (1 up to `perSource`).
    private var sourcesHolding: [Int: Set<String>] = [:]
    /// The most places any one source holds.
    private var heaviestCount = 0

    init(total: Int, perSource: Int) {
        self.total = max(1, total)
        self.perSource = max(1, perSource)
    }

    var count: Int { entries.count }
    func count(from source: String) -> Int { bySource[source]?.count ?? 0 }
    func contains(_ id: ID) -> Bool { entries[id] != nil }

    enum Room: Equatable {
        case free
        /// The place of this connection, the oldest of a heavier source.
        case evict(ID, source: String)
        case full
    }

    /// Whether a newcomer from `source` can have a place, and whose, when the pool counts as
    /// full at `limit` places (at most `total`; less for those kept out of a reserved share).
    func room(for source: String, limit: Int) -> Room {
        let own = count(from: source)
        guard own < perSource else { return .full }
        guard entries.count >= min(limit, total) else { return .free }
        guard heaviestCount > own + 1, let heaviest = heaviestSource(), let oldest = bySource[heaviest]?.first
        else { return .full }
        return .evict(oldest, source: heaviest)
    }

    /// Adds `id`; the caller made room (`room(for:)`).
    mutating func insert(_ id: ID, source: String, now: UInt64) {
        entries[id] = (source, now)
        let held = count(from: source)
        bySource[source, default: []].append(id)
        moveSource(source, from: held, to: held + 1)
    }

    @discardableResult
    mutating func remove(_ id: ID) -> (source: String, since: UInt64)? {
        guard let entry = entries.removeValue(forKey: id) else { return nil }
        let held = count(from: entry.source)
        bySource[entry.source]?.removeAll { $0 == id }
        if bySource[entry.source]?.isEmpty == true { bySource[entry.source] = nil }
        moveSource(entry.source, from: held, to: held - 1)
        return entry
    }

    private mutating func moveSource(_ source: String, from old: Int, to new: Int) {
        if old > 0 {
            sourcesHolding[old]?.remove(source)
            if sourcesHolding[old]?.isEmpty == true { sourcesHolding[old] = nil }
        }
        if new > 0 { sourcesHolding[new, default: []].insert(source) }
        // Counts move by one, so the heaviest count does too.
        if new > heaviestCount { heaviestCount = new }
        if old == heaviestCount, sourcesHolding[old] == nil { heaviestCount = new }
    }

    /// A source with the most connections; of equals, the one whose oldest is oldest.
    private func heaviestSource() -> String? {
        sourcesHolding[heaviestCount]?.min { left, right in
            let leftSince = bySource[left]?.first.flatMap { entries[$0]?.since } ?? 0
            let rightSince = bySource[right]?.first.flatMap { entries[$0]?.since } ?? 0
            return leftSince < rightSince
        }
    }
}
