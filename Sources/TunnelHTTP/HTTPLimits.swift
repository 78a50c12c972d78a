/// Bounds on what a peer can make a parser hold. Every parser has one; the defaults suit a server
/// that takes small requests, and a proxy that streams bodies through sets `maxBodyBytes` itself.
public struct HTTPLimits: Sendable, Equatable {
    /// Bytes of a head: the target or reason, plus every header name and value.
    public var maxHeadBytes: Int
    /// Header lines in one head.
    public var maxHeaderCount: Int
    /// Bytes of one message's body, after chunked framing is removed.
    public var maxBodyBytes: UInt64

    public init(
        maxHeadBytes: Int = HTTPLimits.defaultHeadBytes, maxHeaderCount: Int = HTTPLimits.defaultHeaderCount,
        maxBodyBytes: UInt64 = HTTPLimits.defaultBodyBytes
    ) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }

    /// 32 KiB: kubectl's requests with a bearer token, impersonation headers and long list-query
    /// targets stay under 8 KiB; nginx refuses past 4 × 8 KiB by default. A larger head is a
    /// memory attack, not a request.
    public static let defaultHeadBytes = 32 * 1024
    /// 100 lines: browsers and kubectl send fewer than 20, and a rewriting proxy adds a handful.
    /// h2o and Go's servers draw the line in the same place.
    public static let defaultHeaderCount = 100
    /// 1 MiB: enough for any form or small upload; a server that takes larger bodies says so.
    public static let defaultBodyBytes: UInt64 = 1024 * 1024
    /// For a proxy that forwards bodies piece by piece and so never holds one whole (a
    /// Kubernetes list or a log follow can run to gigabytes): no cap on the body.
    public static let unboundedBody = UInt64.max
}

/// The one error type of TunnelHTTP. A parser that threw stays failed: the connection's byte
/// stream can no longer be trusted to be in step, so the caller answers (or not) and closes.
public enum HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// http-parser refused the bytes: its error name (`HPE_INVALID_METHOD`) and description.
    case malformed(name: String, description: String)
    /// The head grew past `HTTPLimits.maxHeadBytes`.
    case headTooLarge(limit: Int)
    /// The head has more lines than `HTTPLimits.maxHeaderCount`.
    case tooManyHeaders(limit: Int)
    /// The body (declared by Content-Length, or received) is larger than `HTTPLimits.maxBodyBytes`.
    case bodyTooLarge(limit: UInt64)
    /// A header name or value, target or reason is not UTF-8 (this module keeps them as `String`).
    case notUTF8(field: String)
    /// The input ended inside a message.
    case truncated
    /// Input after `HTTPEvent.upgrade`, or after an earlier error.
    case closed
    /// A head to encode holds what HTTP cannot carry (a line break, a space in a method, ...).
    case unencodable(field: String)

    public var description: String {
        switch self {
        case .malformed(let name, let description): "malformed HTTP (\(name)): \(description)"
        case .headTooLarge(let limit): "HTTP head larger than \(limit) bytes"
        case .tooManyHeaders(let limit): "more than \(limit) HTTP header lines"
        case .bodyTooLarge(let limit): "HTTP body larger than \(limit) bytes"
        case .notUTF8(let field): "HTTP \(field) is not UTF-8"
        case .truncated: "the connection ended inside an HTTP message"
        case .closed: "the HTTP parser takes no more input (after an upgrade or an error)"
        case .unencodable(let field):
            "cannot write HTTP \(field): it holds a line break, control character or separator"
        }
    }

    /// The status a server answers a request with when parsing it failed.
    public var responseStatus: Int {
        switch self {
        case .headTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        default: 400
        }
    }
}
