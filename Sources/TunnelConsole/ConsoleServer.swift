import TunnelAudit
import TunnelHTTP
import TunnelHTTPServer
import TunnelIO

/// The console's pages are responses of the shared HTTP server.
typealias Response = HTTPResponse

/// The console's HTTP server: the shared `HTTPServer` with the console's limits, security
/// headers and its one-time-link authentication in front of the routes. Loop-confined.
public final class ConsoleServer {
    /// Browsers open six connections per host; a few tabs of an auditor's stay well below this.
    /// Requests are GETs with a query: small heads, no body.
    static let limits = HTTPServerLimits(
        maxConnections: 32, idleMilliseconds: 30_000,
        parser: HTTPLimits(maxHeadBytes: 16 * 1024, maxHeaderCount: 64, maxBodyBytes: 0))
    /// Every response forbids scripts and styles not served by the console itself, framing,
    /// sniffing and referrers, and caching (the pages are evidence, not for a shared cache).
    static let securityHeaders = [
        HTTPHeader(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        HTTPHeader("X-Content-Type-Options", "nosniff"), HTTPHeader("Referrer-Policy", "no-referrer"),
        HTTPHeader("X-Frame-Options", "DENY"), HTTPHeader("Cache-Control", "no-store"),
    ]

    public let url: String
    private var server: HTTPServer?

    init(loop: EventLoop, address: SocketAddress, routes: ConsoleRoutes) throws(IOError) {
        var auth: ConsoleAuth?
        let server = try HTTPServer(
            loop: loop, address: address, limits: Self.limits, commonHeaders: Self.securityHeaders
        ) { head in
            // The closure shares `auth` with this initializer (set once the port is known) and
            // mutates it: the one-time secret is spent here.
            guard auth != nil else { return .text("starting", status: 503) }
            let rawTarget = head.target ?? "/"
            let target = RequestTarget(rawTarget)
            switch auth!.decide(
                host: head.value("Host"), cookieHeader: head.values("Cookie"), target: target, rawTarget: rawTarget)
            {
            case .refused(let reason): return .text("403 Forbidden: \(reason)", status: 403)
            case .exchange(let location):
                return .redirect(location, headers: [HTTPHeader("Set-Cookie", auth!.setCookie)])
            case .allowed: return routes.respond(target)
            }
        }
        let bound = server.localAddress
        let made = ConsoleAuth(listenHost: bound.ip, port: bound.port)
        auth = made
        self.server = server
        let host = bound.isIPv6 ? "[\(bound.ip)]" : bound.ip
        url = "http://\(host):\(bound.port)/sessions?token=\(made.secret)"
    }

    /// Indexes the log in `directory` and listens at `address`; `report` is its verification.
    public convenience init(
        loop: EventLoop, address: SocketAddress, directory: String, report: AuditReport, services: ConsoleServices
    ) throws {
        let index = try AuditIndex(directory: directory)
        try self.init(
            loop: loop, address: address, routes: ConsoleRoutes(index: index, report: report, services: services))
    }

    public func close() {
        server?.close()
        server = nil
    }
}
