import TunnelAudit
import TunnelHTTP
import TunnelIO

/// One HTTP response, before encoding.
struct Response {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var headers: [HTTPHeader] = []

    static func html(_ text: String, status: Int = 200) -> Response {
        Response(status: status, contentType: "text/html; charset=utf-8", body: Array(text.utf8))
    }

    static func text(_ text: String, status: Int) -> Response {
        Response(status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8))
    }

    /// Tells the browser to save the body as `file` rather than show it.
    static func attachment(_ file: String) -> HTTPHeader { HTTPHeader("Content-Disposition", "attachment; filename=\"\(file)\"") }

    static func redirect(_ location: String, headers: [HTTPHeader] = []) -> Response {
        Response(status: 303, contentType: "text/plain; charset=utf-8", body: [], headers: [HTTPHeader("Location", location)] + headers)
    }
}

/// The console's HTTP server on the project's libuv loop: each connection parsed by
/// `HTTPParser`, answered in order, closed when idle. Loop-confined: not `Sendable`.
public final class ConsoleServer {
    /// Browsers open six connections per host; a few tabs of an auditor's stay well below this.
    static let maxConnections = 32
    /// An idle keep-alive connection is closed after this long, so dead peers free their slot.
    static let idleMilliseconds: UInt64 = 30_000
    /// Requests are GETs with a query: small heads, no body.
    static let limits = HTTPLimits(maxHeadBytes: 16 * 1024, maxHeaderCount: 64, maxBodyBytes: 0)
    /// Every response forbids scripts and styles not served by the console itself, framing,
    /// sniffing and referrers, and caching (the pages are evidence, not for a shared cache).
    static let securityHeaders = [
        HTTPHeader("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                   + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        HTTPHeader("X-Content-Type-Options", "nosniff"), HTTPHeader("Referrer-Policy", "no-referrer"),
        HTTPHeader("X-Frame-Options", "DENY"), HTTPHeader("Cache-Control", "no-store"),
    ]

    public let url: String
    private let listener: TCPListener
    private let timer: LoopTimer
    private var auth: ConsoleAuth
    private let routes: ConsoleRoutes
    private var connections: [ObjectIdentifier: ConsoleConnection] = [:]

    init(loop: EventLoop, address: SocketAddress, routes: ConsoleRoutes) throws(IOError) {
        self.routes = routes
        var accept: ((Result<StreamConnection, IOError>) -> Void)?
        listener = try TCPListener(loop: loop, address: address) { accept?($0) }
        let bound = listener.localAddress
        auth = ConsoleAuth(listenHost: bound.ip, port: bound.port)
        let host = bound.isIPv6 ? "[\(bound.ip)]" : bound.ip
        url = "http://\(host):\(bound.port)/sessions?token=\(auth.secret)"
        timer = LoopTimer(loop: loop)
        accept = { [unowned self] result in if case .success(let socket) = result { self.accepted(socket) } }
        timer.start(after: 5_000, repeat: 5_000) { [unowned self] in self.closeIdle(now: loop.now) }
    }

    /// Indexes the log in `directory` and listens at `address`; `report` is its verification.
    public convenience init(loop: EventLoop, address: SocketAddress, directory: String, report: AuditReport, services: ConsoleServices) throws {
        let index = try AuditIndex(directory: directory)
        try self.init(loop: loop, address: address, routes: ConsoleRoutes(index: index, report: report, services: services))
    }

    public func close() {
        timer.close()
        listener.close()
        for connection in connections.values { connection.socket.close() }
        connections = [:]
    }

    private func accepted(_ socket: StreamConnection) {
        guard connections.count < Self.maxConnections else { socket.close(); return }
        let connection = ConsoleConnection(socket: socket, now: socket.loop.now)
        connections[ObjectIdentifier(connection)] = connection
        do {
            try socket.startReading { [unowned self, unowned connection] event in self.read(event, on: connection) }
        } catch {
            drop(connection)
        }
    }

    private func read(_ event: StreamConnection.ReadEvent, on connection: ConsoleConnection) {
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

    private func refuse(_ error: HTTPError, on connection: ConsoleConnection) {
        guard !connection.closing else { return }
        send(.text(error.description, status: error.responseStatus), head: nil, on: connection, close: true)
    }

    private func handle(_ event: HTTPEvent, on connection: ConsoleConnection) {
        switch event {
        case .head(let head): connection.request = head
        case .body: break
        case .end:
            guard let head = connection.request, !connection.closing else { return }
            connection.request = nil
            send(respond(head), head: head, on: connection, close: !head.keepAlive)
        case .upgrade:
            send(.text("the console does not upgrade connections", status: 400), head: nil, on: connection, close: true)
        }
    }

    private func respond(_ head: HTTPHead) -> Response {
        guard head.method == "GET" || head.method == "HEAD" else {
            return .text("the console is read-only: only GET and HEAD", status: 405)
        }
        let rawTarget = head.target ?? "/"
        let target = RequestTarget(rawTarget)
        switch auth.decide(host: head.value("Host"), cookieHeader: head.values("Cookie"), target: target, rawTarget: rawTarget) {
        case .refused(let reason): return .text("403 Forbidden: \(reason)", status: 403)
        case .exchange(let location): return .redirect(location, headers: [HTTPHeader("Set-Cookie", auth.setCookie)])
        case .allowed: return routes.respond(target)
        }
    }

    private func send(_ response: Response, head: HTTPHead?, on connection: ConsoleConnection, close: Bool) {
        let reason = Self.reasons[response.status] ?? "Status"
        var headers = [HTTPHeader("Content-Type", response.contentType), HTTPHeader("Content-Length", "\(response.body.count)")]
        headers += Self.securityHeaders + response.headers
        if close { headers.append(HTTPHeader("Connection", "close")) }
        let responseHead = HTTPHead(start: .response(status: response.status, reason: reason), headers: headers)
        guard let encoded = try? responseHead.encoded() else { drop(connection); return }
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

    private func drop(_ connection: ConsoleConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        connection.socket.close()
    }

    private func closeIdle(now: UInt64) {
        for connection in connections.values where now - connection.lastActive > Self.idleMilliseconds { drop(connection) }
    }

    static let reasons = [200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                          413: "Content Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"]
}

/// One accepted connection: its socket, its parser and the request being read.
final class ConsoleConnection {
    let socket: StreamConnection
    let parser = HTTPParser(.request, limits: ConsoleServer.limits)
    var request: HTTPHead?
    var lastActive: UInt64
    /// A response that ends the connection was queued; later requests on it are ignored.
    var closing = false

    init(socket: StreamConnection, now: UInt64) {
        self.socket = socket
        lastActive = now
    }
}
