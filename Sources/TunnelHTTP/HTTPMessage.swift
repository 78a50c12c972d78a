/// One header line as it arrived: the name keeps its original case, and a message keeps its
/// headers in order with duplicates, so a proxy can forward exactly what it was sent.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The HTTP version of a message, `HTTP/major.minor`.
public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http11 = HTTPVersion(major: 1, minor: 1)
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// The head of a request or a response: its first line, its version and its headers.
public struct HTTPHead: Sendable, Equatable {
    /// What the first line says: a request's method and target, or a response's status and reason.
    public enum StartLine: Sendable, Equatable {
        case request(method: String, target: String)
        case response(status: Int, reason: String)
    }

    public var start: StartLine
    public var version: HTTPVersion
    public var headers: [HTTPHeader]
    /// Whether the connection stays open after this message (the version's default, changed by
    /// `Connection: close` or `Connection: keep-alive`). Meaningful for parsed heads only.
    public var keepAlive: Bool
    /// Whether the connection leaves HTTP after this head: a request asking to upgrade (or a
    /// CONNECT), or a `101 Switching Protocols` response. Meaningful for parsed heads only.
    public var upgrade: Bool

    public init(
        start: StartLine, version: HTTPVersion = .http11, headers: [HTTPHeader] = [], keepAlive: Bool = true,
        upgrade: Bool = false
    ) {
        self.start = start
        self.version = version
        self.headers = headers
        self.keepAlive = keepAlive
        self.upgrade = upgrade
    }

    /// The request's method, or nil for a response.
    public var method: String? { if case .request(let method, _) = start { method } else { nil } }
    /// The request's target (`/path?query`), or nil for a response.
    public var target: String? { if case .request(_, let target) = start { target } else { nil } }
    /// The response's status code, or nil for a request.
    public var status: Int? { if case .response(let status, _) = start { status } else { nil } }

    /// Every value of the header `name`, compared without regard to ASCII case, in order.
    public func values(_ name: String) -> [String] {
        headers.filter { HTTPHead.sameName($0.name, name) }.map(\.value)
    }

    /// The first value of the header `name`, compared without regard to ASCII case.
    public func value(_ name: String) -> String? {
        headers.first { HTTPHead.sameName($0.name, name) }?.value
    }

    /// Removes every header called `name` (any case), as a rewriting proxy does before setting its own.
    public mutating func remove(_ name: String) {
        headers.removeAll { HTTPHead.sameName($0.name, name) }
    }

    /// Header names are ASCII tokens; case-folding only A–Z is the whole rule (RFC 9110 §5.1).
    public static func sameName(_ left: String, _ right: String) -> Bool {
        let a = left.utf8, b = right.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { lower($0) == lower($1) }
    }

    private static func lower(_ byte: UInt8) -> UInt8 { (65...90).contains(byte) ? byte | 0x20 : byte }
}

/// What a parser reports, in the order the bytes carried it.
public enum HTTPEvent: Sendable, Equatable {
    /// A message's head is complete.
    case head(HTTPHead)
    /// Some bytes of the message's body (chunked framing already removed). A body may come in
    /// any number of pieces; their boundaries carry no meaning.
    case body([UInt8])
    /// The message is complete; the next bytes, if any, start the next message.
    case end
    /// The connection left HTTP after the head just reported (an upgrade, a CONNECT, or a 101
    /// response). `rest` holds the bytes that followed the head in the same input: they belong
    /// to the new protocol. The parser takes no more input after this event.
    case upgrade(rest: [UInt8])
}
