import TunnelHTTP
import TunnelIO

/// One HTTP response, before encoding.
public struct HTTPResponse {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [HTTPHeader]

    public init(status: Int, contentType: String, body: [UInt8], headers: [HTTPHeader] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    public static func html(_ text: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/html; charset=utf-8", body: Array(text.utf8))
    }

    public static func text(_ text: String, status: Int) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8))
    }

    /// Tells the browser to save the body as `file` rather than show it.
    public static func attachment(_ file: String) -> HTTPHeader {
        HTTPHeader("Content-Disposition", "attachment; filename=\"\(file)\"")
    }

    public static func redirect(_ location: String, headers: [HTTPHeader] = []) -> HTTPResponse {
        HTTPResponse(
            status: 303, contentType: "text/plain; charset=utf-8", body: [],
            headers: [HTTPHeader("Location", location)] + headers)
    }
}

/// What an `HTTPServer` is told about the requests it may take.
public struct HTTPServerLimits: Sendable {
    /// Accepted connections beyond this are closed at once.
    public var maxConnections: Int
    /// An idle keep-alive connection is closed after this long, so dead peers free their slot.
    public var idleMilliseconds: UInt64
    public var parser: HTTPLimits

    public init(maxConnections: Int, idleMilliseconds: UInt64 = 30_000, parser: HTTPLimits) {
        self.maxConnections = maxConnections
        self.idleMilliseconds = idleMilliseconds
        self.parser = parser
    }
}

/// A small HTTP/1.1 server on the project's libuv loop for read-only pages (the audit console,
/// the metrics endpoint): each connection parsed by `HTTPParser`, requests answered in order by
/// `respond`, idle connections closed. Only GET and HEAD are served; no upgrades. Loop-confined:
/// not `Sendable`.
public final class HTTPServer {
    public let localAddress: SocketAddress
    private let listener: TCPListener
    private let timer: LoopTimer
    private let limits: HTTPServerLimits
    /// Added to every response (a page's security headers).
    private let commonHeaders: [HTTPHeader]
    private let respond: (HTTPHead) -> HTTPResponse
    private var connections: [ObjectIdentifier: HTTPServerConnection] = [:]

    public init(
        loop: EventLoop, address: SocketAddress, limits: HTTPServerLimits, commonHeaders: [HTTPHeader] = [],
        respond: @escaping (HTTPHead) -> HTTPResponse
    ) throws(IOError) {
        self.limits = limits
        self.commonHeaders = commonHeaders
        self.respond = respond
        var accept: ((Result<StreamConnection, IOError>) -> Void)?
        listener = try TCPListener(loop: loop, address: address) { accept?($0) }
        localAddress = listener.localAddress
        timer = LoopTimer(loop: loop)
        accept = { [unowned self] result in if case .success(let socket) = result { self.accepted(socket) } }
        let sweep = max(1, min(5_000, limits.idleMilliseconds / 2))
        timer.start(after: sweep, repeat: sweep) { [unowned self] in self.closeIdle(now: loop.now) }
    }

    public func close() {
        timer.close()
        listener.close()
        for connection in connections.values { connection.socket.close() }
        connections = [:]
    }

    private func accepted(_ socket: StreamConnection) {
        guard connections.count < limits.maxConnections else {
            socket.close()
            return
        }
        let connection = HTTPServerConnection(socket: socket, limits: limits.parser, now: socket.loop.now)
        connections[ObjectIdentifier(connection)] = connection
        do {
            try socket.startReading { [unowned self, unowned connection] event in self.read(event, on: connection) }
        } catch {
            drop(connection)
        }
    }

    private func read(_ event: StreamConnection.ReadEvent, on connection: HTTPServerConnection) {
        connection.lastActive = connection.socket.loop.now
        switch event {
        case .data(let bytes):
            do throws(HTTPError) {
                for event in try connection.parser.feed(bytes) { handle(event, on: connection) }
                // Good requests before bad bytes were answered above; now the error.
                if let failure = connection.parser.failure { refuse(failure, on: connection) }
            } catch {
                refuse(error, on: connection)
            }
        case .end, .error:
            drop(connection)
        }
    }

    private func refuse(_ error: HTTPError, on connection: HTTPServerConnection) {
        guard !connection.closing else { return }
        send(.text(error.description, status: error.responseStatus), head: nil, on: connection, close: true)
    }

    private func handle(_ event: HTTPEvent, on connection: HTTPServerConnection) {
        switch event {
        case .head(let head): connection.request = head
        case .body: break
        case .end:
            guard let head = connection.request, !connection.closing else { return }
            connection.request = nil
            guard head.method == "GET" || head.method == "HEAD" else {
                return send(
                    .text("read-only: only GET and HEAD", status: 405), head: head, on: connection,
                    close: !head.keepAlive)
            }
            send(respond(head), head: head, on: connection, close: !head.keepAlive)
        case .upgrade:
            send(.text("this server does not upgrade connections", status: 400), head: nil, on: connection, close: true)
        }
    }

    private func send(_ response: HTTPResponse, head: HTTPHead?, on connection: HTTPServerConnection, close: Bool) {
        let reason = Self.reasons[response.status] ?? "Status"
        var headers = [
            HTTPHeader("Content-Type", response.contentType), HTTPHeader("Content-Length", "\(response.body.count)"),
        ]
        headers += commonHeaders + response.headers
        if close { headers.append(HTTPHeader("Connection", "close")) }
        let responseHead = HTTPHead(start: .response(status: response.status, reason: reason), headers: headers)
        guard let encoded = try? responseHead.encoded() else {
            drop(connection)
            return
        }
        let bytes = head?.method == "HEAD" ? encoded : encoded + response.body
        if close { connection.closing = true }
        do {
            try connection.socket.write(bytes) { [weak self, weak connection] _ in
                guard close, let self, let connection else { return }
                self.drop(connection)
            }
        } catch {
            drop(connection)
        }
    }

    private func drop(_ connection: HTTPServerConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        connection.socket.close()
    }

    private func closeIdle(now: UInt64) {
        for connection in connections.values where now - connection.lastActive > limits.idleMilliseconds {
            drop(connection)
        }
    }

    static let reasons = [
        200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
        413: "Content Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
        503: "Service Unavailable",
    ]
}

/// One accepted connection: its socket, its parser and the request being read.
final class HTTPServerConnection {
    let socket: StreamConnection
    let parser: HTTPParser
    var request: HTTPHead?
    var lastActive: UInt64
    /// A response that ends the connection was queued; later requests on it are ignored.
    var closing = false

    init(socket: StreamConnection, limits: HTTPLimits, now: UInt64) {
        self.socket = socket
        parser = HTTPParser(.request, limits: limits)
        lastActive = now
    }
}
