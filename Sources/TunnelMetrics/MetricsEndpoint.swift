import TunnelHTTP
import TunnelHTTPServer
import TunnelIO

/// The `--metrics-listen` endpoint: `/metrics` in Prometheus' text exposition format,
/// `/healthz` (the process answers) and `/readyz` (the role can serve). Served by the shared
/// `HTTPServer` on the role's own loop, so a scrape sees the loop's state without locks.
/// Loop-confined: not `Sendable`.
public final class MetricsEndpoint {
    /// Scrapers and probes hold a connection or two each; this leaves room for a few of them.
    static let limits = HTTPServerLimits(
        maxConnections: 16, idleMilliseconds: 30_000,
        parser: HTTPLimits(maxHeadBytes: 8 * 1024, maxHeaderCount: 32, maxBodyBytes: 0))
    /// The exposition format Prometheus negotiates by default (version 0.0.4).
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let server: HTTPServer
    public var localAddress: SocketAddress { server.localAddress }

    /// - Parameters:
    ///   - exposition: the body of `/metrics`, made at each scrape.
    ///   - unreadiness: why the role cannot serve now (one line per reason), empty when ready.
    public init(
        loop: EventLoop, address: SocketAddress, exposition: @escaping () -> [UInt8],
        unreadiness: @escaping () -> [String]
    ) throws(IOError) {
        server = try HTTPServer(
            loop: loop, address: address, limits: Self.limits,
            commonHeaders: [HTTPHeader("Cache-Control", "no-store"), HTTPHeader("X-Content-Type-Options", "nosniff")]
        ) { head in
            Self.respond(path: Self.path(of: head.target ?? "/"), exposition: exposition, unreadiness: unreadiness)
        }
    }

    public func close() { server.close() }

    static func respond(path: String, exposition: () -> [UInt8], unreadiness: () -> [String]) -> HTTPResponse {
        switch path {
        case "/metrics":
            return HTTPResponse(status: 200, contentType: contentType, body: exposition())
        case "/healthz":
            return .text("ok", status: 200)
        case "/readyz":
            let reasons = unreadiness()
            return reasons.isEmpty
                ? .text("ready", status: 200) : .text("not ready: " + reasons.joined(separator: "; "), status: 503)
        default:
            return .text("not found: this endpoint serves /metrics, /healthz and /readyz", status: 404)
        }
    }

    /// The target without its query (Prometheus may add none, a probe might).
    static func path(of target: String) -> String {
        String(target.prefix { $0 != "?" })
    }
}
