internal import CHTTPParser

/// Parses HTTP/1.x requests or responses from a byte stream, sans-IO: feed it the bytes a
/// connection read, in any pieces, and it returns what they completed, in order.
///
/// ```
/// let parser = HTTPParser(.request)
/// for event in try parser.feed(bytesRead) {
///     switch event {
///     case .head(let head): ...   // method, target, headers (ordered, original case), keepAlive, upgrade
///     case .body(let bytes): ...  // chunked framing already removed
///     case .end: ...              // the next bytes start the next (pipelined) message
///     case .upgrade(let rest): ... // the connection left HTTP; `rest` is the new protocol's
///     }
/// }
/// try parser.finish()             // at end of input: completes a body that runs to close
/// ```
///
/// The parsing itself is nodejs/http-parser's (Debian's libhttp-parser-dev); this class owns one
/// `http_parser`, keeps the limits and turns its callbacks into `HTTPEvent`s.
///
/// A response parser must know which responses answer HEAD (they have no body whatever their
/// headers say): call `expectResponse(toMethod:)` once per request sent, in order.
///
/// Loop-confined like everything that handles a connection: not `Sendable`.
public final class HTTPParser {
    public enum Kind: Sendable { case request, response }

    public let kind: Kind
    public let limits: HTTPLimits
    private let parser: UnsafeMutablePointer<http_parser>
    private var settings = http_parser_settings()
    private var events: [HTTPEvent] = []
    /// Why the parser stopped, once it has. When bad bytes follow complete messages in one
    /// input, `feed` returns those messages' events and sets this instead of throwing, so a
    /// server answers the good requests before the error; the next `feed` throws it.
    public private(set) var failure: HTTPError?
    private var failureThrown = false
    private var done = false
    private var head = HeadBuilder()
    private var bodyBytes: UInt64 = 0
    /// For a response parser: whether each awaited response has no body (it answers HEAD).
    private var bodilessResponses: [Bool] = []

    public init(_ kind: Kind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
        parser = .allocate(capacity: 1)
        http_parser_init(parser, kind == .request ? HTTP_REQUEST : HTTP_RESPONSE)
        Self.install(&settings)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { parser.deallocate() }

    /// Tells a response parser that a request with `method` was sent, so the matching response
    /// is read without a body when the method is HEAD.
    public func expectResponse(toMethod method: String) {
        bodilessResponses.append(method == "HEAD")
    }

    /// Parses `bytes` and returns the events they complete. Throws on malformed input or a
    /// broken limit (unless complete messages came first: see `failure`); after the error has
    /// been thrown, or after `.upgrade`, every call throws `.closed`.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws(HTTPError) -> [HTTPEvent] {
        if let failure, !failureThrown {
            failureThrown = true
            throw failure
        }
        guard !done else { throw .closed }
        guard !bytes.isEmpty, let base = bytes.baseAddress else { return [] }
        events = []
        let consumed = http_parser_execute(parser, &settings, base.assumingMemoryBound(to: CChar.self), bytes.count)
        if let error = stopReason() {
            failure = error
            done = true
            guard !events.isEmpty else {
                failureThrown = true
                throw error
            }
            return events
        }
        if tunnel_http_upgrade(parser) != 0 {
            done = true
            events.append(.upgrade(rest: Array(bytes[consumed...])))
        } else if consumed != bytes.count {
            failure = .malformed(name: "HPE_UNKNOWN", description: "the parser stopped before the end of its input")
            failureThrown = true
            done = true
            throw failure!
        }
        return events
    }

    public func feed(_ bytes: [UInt8]) throws(HTTPError) -> [HTTPEvent] {
        let result: Result<[HTTPEvent], HTTPError> = bytes.withUnsafeBytes { buffer in
            do throws(HTTPError) { return .success(try feed(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Tells the parser the input ended. Completes a response whose body runs to the close;
    /// throws `.truncated` when the input ended inside any other message.
    public func finish() throws(HTTPError) -> [HTTPEvent] {
        if let failure, !failureThrown {
            failureThrown = true
            throw failure
        }
        guard !done else { return [] }
        done = true
        events = []
        _ = http_parser_execute(parser, &settings, nil, 0)
        if tunnel_http_errno(parser) == HPE_INVALID_EOF_STATE.rawValue { throw .truncated }
        if let error = stopReason() {
            failure = error
            failureThrown = true
            throw error
        }
        return events
    }

    /// Our own refusal (a limit) or else http-parser's error, if parsing stopped.
    private func stopReason() -> HTTPError? {
        if let failure { return failure }
        let code = tunnel_http_errno(parser)
        guard code != HPE_OK.rawValue else { return nil }
        let errno = http_errno(rawValue: code)
        return .malformed(
            name: String(cString: http_errno_name(errno)), description: String(cString: http_errno_description(errno)))
    }

    /// Records the first error and returns -1, which makes http-parser stop. (Not 1: from
    /// on_headers_complete, 1 means "no body" and parsing would go on.)
    private func refuse(_ error: HTTPError) -> Int32 {
        if failure == nil { failure = error }
        return -1
    }

    // MARK: Callbacks

    fileprivate func append(_ part: HeadBuilder.Part, _ bytes: UnsafePointer<CChar>?, _ count: Int) -> Int32 {
        guard let bytes else { return 0 }
        head.size += count
        guard head.size <= limits.maxHeadBytes else { return refuse(.headTooLarge(limit: limits.maxHeadBytes)) }
        let buffer = UnsafeRawBufferPointer(start: bytes, count: count)
        if part == .name, head.inValue {
            head.finishHeader()
            guard head.headers.count < limits.maxHeaderCount else {
                return refuse(.tooManyHeaders(limit: limits.maxHeaderCount))
            }
        }
        head.append(part, buffer)
        return 0
    }

    fileprivate func headersComplete() -> Int32 {
        if head.inValue { head.finishHeader() }
        guard head.headers.count <= limits.maxHeaderCount else {
            return refuse(.tooManyHeaders(limit: limits.maxHeaderCount))
        }
        let length = parser.pointee.content_length
        if length != UInt64.max, length > limits.maxBodyBytes {
            return refuse(.bodyTooLarge(limit: limits.maxBodyBytes))
        }
        let completed: HTTPHead
        do throws(HTTPError) { completed = try head.build(kind: kind, parser: parser) } catch { return refuse(error) }
        head = HeadBuilder()
        bodyBytes = 0
        events.append(.head(completed))
        guard kind == .response, let status = completed.status, status >= 200 || status == 101 else { return 0 }
        let bodiless = bodilessResponses.isEmpty ? false : bodilessResponses.removeFirst()
        return bodiless ? 1 : 0
    }

    fileprivate func body(_ bytes: UnsafePointer<CChar>?, _ count: Int) -> Int32 {
        guard let bytes else { return 0 }
        bodyBytes += UInt64(count)
        guard bodyBytes <= limits.maxBodyBytes else { return refuse(.bodyTooLarge(limit: limits.maxBodyBytes)) }
        events.append(.body(Array(UnsafeRawBufferPointer(start: bytes, count: count))))
        return 0
    }

    fileprivate func messageComplete() -> Int32 {
        events.append(.end)
        return 0
    }

    private static func owner(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPParser {
        Unmanaged<HTTPParser>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
    }

    /// The callbacks capture nothing; each finds its parser through the `data` slot.
    private static func install(_ settings: inout http_parser_settings) {
        settings.on_url = { HTTPParser.owner($0).append(.target, $1, $2) }
        settings.on_status = { HTTPParser.owner($0).append(.reason, $1, $2) }
        settings.on_header_field = { HTTPParser.owner($0).append(.name, $1, $2) }
        settings.on_header_value = { HTTPParser.owner($0).append(.value, $1, $2) }
        settings.on_headers_complete = { HTTPParser.owner($0).headersComplete() }
        settings.on_body = { HTTPParser.owner($0).body($1, $2) }
        settings.on_message_complete = { HTTPParser.owner($0).messageComplete() }
    }
}

/// The pieces of a head as http-parser hands them over, each possibly split across calls.
private struct HeadBuilder {
    enum Part { case target, reason, name, value }

    var target: [UInt8] = []
    var reason: [UInt8] = []
    var name: [UInt8] = []
    var value: [UInt8] = []
    var inValue = false
    var headers: [(name: [UInt8], value: [UInt8])] = []
    var size = 0

    mutating func append(_ part: Part, _ bytes: UnsafeRawBufferPointer) {
        switch part {
        case .target: target += bytes
        case .reason: reason += bytes
        case .name:
            name += bytes
            inValue = false
        case .value:
            value += bytes
            inValue = true
        }
    }

    mutating func finishHeader() {
        headers.append((name, value))
        name = []
        value = []
        inValue = false
    }

    func build(kind: HTTPParser.Kind, parser: UnsafeMutablePointer<http_parser>) throws(HTTPError) -> HTTPHead {
        let start: HTTPHead.StartLine
        switch kind {
        case .request:
            let method = String(cString: http_method_str(http_method(rawValue: tunnel_http_method(parser))))
            start = .request(method: method, target: try Self.text(target, "target"))
        case .response:
            start = .response(status: Int(tunnel_http_status(parser)), reason: try Self.text(reason, "reason phrase"))
        }
        var list: [HTTPHeader] = []
        list.reserveCapacity(headers.count)
        for header in headers {
            let name = try Self.text(header.name, "header name")
            list.append(HTTPHeader(name, try Self.text(header.value, "value of \(name)")))
        }
        return HTTPHead(
            start: start,
            version: HTTPVersion(major: Int(parser.pointee.http_major), minor: Int(parser.pointee.http_minor)),
            headers: list, keepAlive: http_should_keep_alive(parser) != 0, upgrade: tunnel_http_upgrade(parser) != 0)
    }

    static func text(_ bytes: [UInt8], _ field: String) throws(HTTPError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8(field: field) }
        return text
    }
}
