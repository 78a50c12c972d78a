/// Reads the ALPN names a TLS ClientHello offers from a connection's first bytes, before any TLS
/// state exists, so a server can tell who a peer claims to be (an operator, a node, a newcomer)
/// before it charges it a place among its handshakes. Sans-IO and dependency-free: it is fed the
/// bytes as they arrive and only ever classifies; the bytes themselves still go to OpenSSL, which
/// decides everything else (a peer that lies about its protocol still fails its handshake).
///
/// Hostile input is the normal case: every length is checked against what is left before it is
/// used, the handshake message is bounded (`maximumHelloBytes`), and so is what it keeps
/// (`maximumBufferedBytes`, with records of any fragmentation). Work is linear in the bytes fed:
/// a record is looked at once, when it is complete, and the hello once, when it is.
public struct ClientHelloPeek {
    /// What the bytes so far say.
    public enum Verdict: Equatable, Sendable {
        /// Not enough bytes yet to decide.
        case needMore
        /// A complete ClientHello offering these ALPN names, in its order (at most
        /// `maximumNames`; empty when it has no ALPN extension).
        case offered([String])
        /// Not a TLS ClientHello this peek can read (wrong record type, bad lengths, too large):
        /// the connection goes on unclassified, and TLS says what is wrong with it.
        case unreadable(String)
    }

    /// The largest ClientHello message read (RFC 8446 allows more, but no client of ours sends
    /// more than a few KiB, post-quantum key shares included).
    public static let maximumHelloBytes = 16 * 1024
    /// The most bytes kept while the hello is incomplete: the hello plus record headers of a
    /// peer fragmenting it into small records, beyond which it is unreadable.
    public static let maximumBufferedBytes = maximumHelloBytes + 4 * 1024
    /// ALPN names read; the first one the server serves decides anyway.
    public static let maximumNames = 16

    private static let recordHeader = 5
    private static let handshakeRecord: UInt8 = 22
    private static let clientHelloType: UInt8 = 1
    private static let alpnExtension = 16

    /// Every byte fed, in order (the caller hands them on to TLS).
    public private(set) var received: [UInt8] = []
    /// Where the next record starts in `received`.
    private var nextRecord = 0
    /// The handshake-layer bytes of the records read so far.
    private var handshake: [UInt8] = []
    public private(set) var verdict = Verdict.needMore

    public init() {}

    /// Appends `bytes` and says what all bytes so far amount to; once decided, the verdict stays.
    @discardableResult
    public mutating func feed(_ bytes: some Collection<UInt8>) -> Verdict {
        received.append(contentsOf: bytes)
        guard verdict == .needMore else { return verdict }
        verdict = readRecords()
        return verdict
    }

    private mutating func readRecords() -> Verdict {
        while received.count - nextRecord >= Self.recordHeader {
            let type = received[nextRecord], major = received[nextRecord + 1]
            let length = Int(received[nextRecord + 3]) << 8 | Int(received[nextRecord + 4])
            guard type == Self.handshakeRecord, major == 3 else { return .unreadable("not a TLS handshake record") }
            guard length > 0, length <= 1 << 14 else { return .unreadable("a TLS record length out of range") }
            let start = nextRecord + Self.recordHeader
            guard start + length <= Self.maximumBufferedBytes else {
                return .unreadable("a ClientHello in too many records")
            }
            guard received.count - start >= length else { break }
            handshake.append(contentsOf: received[start..<start + length])
            nextRecord = start + length
            if let decided = readHandshake() { return decided }
        }
        return received.count > Self.maximumBufferedBytes ? .unreadable("a ClientHello in too many records") : .needMore
    }

    /// The verdict once the handshake bytes hold the whole first message, nil before.
    private func readHandshake() -> Verdict? {
        guard handshake.count >= 4 else { return nil }
        guard handshake[0] == Self.clientHelloType else { return .unreadable("the first message is not a ClientHello") }
        let length = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
        guard length <= Self.maximumHelloBytes else { return .unreadable("a ClientHello of \(length) bytes") }
        guard handshake.count - 4 >= length else { return nil }
        var body = Reader(handshake[4..<4 + length])
        guard let names = Self.offeredProtocols(&body) else { return .unreadable("a malformed ClientHello") }
        return .offered(names)
    }

    /// The ALPN names of a ClientHello body (RFC 8446 §4.1.2, RFC 7301), nil when malformed.
    private static func offeredProtocols(_ body: inout Reader) -> [String]? {
        guard body.skip(2 + 32), // legacy_version, random
            body.skipVector(lengthBytes: 1), // legacy_session_id
            body.skipVector(lengthBytes: 2), // cipher_suites
            body.skipVector(lengthBytes: 1) // legacy_compression_methods
        else { return nil }
        if body.isAtEnd { return [] } // no extensions at all (TLS 1.2 allows it; TLS refuses it later)
        guard var extensions = body.vector(lengthBytes: 2), body.isAtEnd else { return nil }
        var names: [String] = []
        while !extensions.isAtEnd {
            guard let type = extensions.number(bytes: 2), var data = extensions.vector(lengthBytes: 2) else {
                return nil
            }
            guard type == alpnExtension else { continue }
            guard var list = data.vector(lengthBytes: 2), data.isAtEnd, !list.isAtEnd else { return nil }
            while !list.isAtEnd {
                guard let name = list.vector(lengthBytes: 1), !name.isAtEnd else { return nil }
                if names.count < maximumNames { names.append(String(decoding: name.rest, as: UTF8.self)) }
            }
        }
        return names
    }

    /// Big-endian fields and length-prefixed vectors over a slice, each checked against what is left.
    private struct Reader {
        private(set) var rest: ArraySlice<UInt8>

        init(_ bytes: ArraySlice<UInt8>) { rest = bytes }

        var isAtEnd: Bool { rest.isEmpty }

        mutating func skip(_ count: Int) -> Bool {
            guard rest.count >= count else { return false }
            rest.removeFirst(count)
            return true
        }

        mutating func number(bytes: Int) -> Int? {
            guard rest.count >= bytes else { return nil }
            let value = rest.prefix(bytes).reduce(0) { $0 << 8 | Int($1) }
            rest.removeFirst(bytes)
            return value
        }

        mutating func vector(lengthBytes: Int) -> Reader? {
            guard let length = number(bytes: lengthBytes), rest.count >= length else { return nil }
            defer { rest.removeFirst(length) }
            return Reader(rest.prefix(length))
        }

        mutating func skipVector(lengthBytes: Int) -> Bool { vector(lengthBytes: lengthBytes) != nil }
    }
}
