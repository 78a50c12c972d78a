import Foundation
import Testing
import TunnelAudit
import TunnelConsole
import TunnelHTTP
import TunnelIO

/// The console over a real loopback socket, spoken to in raw HTTP/1.1 and read back with
/// `HTTPParser`: the secret, the cookie, the Host check, pipelining, limits and escaping.
@Suite struct ConsoleServerTests {
    /// A signed log of one shell stream whose service name is hostile.
    static func makeLog() throws -> (directory: String, report: AuditReport) {
        let directory = NSTemporaryDirectory() + "console-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = try AuditSigningKey.generate()
        let log = try AuditLog(directory: directory, signingKey: key, now: Date())
        let service = "<script>x</script>\u{1B}[2J"
        let actor = AuditOperator(
            peer: AuditPeer(session: "s1", source: "127.0.0.1:1"), name: "alice", subject: nil, serial: nil,
            roles: ["admin"])
        let target = StreamTarget(
            stream: "s1/1", node: "node-17", service: service, parameters: nil, policyVersion: "v1")
        try log.append(
            .streamOpen(StreamRequestParties(actor: actor, target: target), StreamGrant(rule: "admin.allow[0]")),
            now: Date(), durable: true)
        var close = StreamClose(outcome: .closed)
        close.durationMs = 5
        let parties = StreamParties(
            stream: "s1/1", session: "s1", operatorName: "alice", node: "node-17", service: service)
        try log.append(.streamClose(parties, close), now: Date(), durable: true)
        try log.close(now: Date())
        return (directory, AuditVerifier.verify(directory: directory, publicKey: key.publicKey))
    }

    /// Sends each batch of requests once the responses to the previous one have all arrived.
    final class Client {
        let loop: EventLoop
        let parser = HTTPParser(.response)
        var responses: [(head: HTTPHead, body: [UInt8])] = []
        private var body: [UInt8] = []
        private var head: HTTPHead?

        init(loop: EventLoop) { self.loop = loop }

        func read(_ event: StreamConnection.ReadEvent) throws {
            guard case .data(let bytes) = event else { return }
            for event in try parser.feed(bytes) {
                switch event {
                case .head(let parsed):
                    head = parsed
                    body = []
                case .body(let more): body += more
                case .end: if let head { responses.append((head, body)) }
                case .upgrade: Issue.record("the console upgraded a connection")
                }
            }
        }
    }

    @Test func secretCookieHostCheckPipeliningAndEscaping() throws {
        let (directory, report) = try Self.makeLog()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(report.isValid)
        let loop = try EventLoop()
        let services = ConsoleServices(recordRead: { _ in }, exportBundle: { _, _, _, _ in })
        let server = try ConsoleServer(
            loop: loop, address: try SocketAddress(ip: "127.0.0.1", port: 0), directory: directory, report: report,
            services: services)
        let url = server.url
        let host = String(url.dropFirst("http://".count).prefix { $0 != "/" })
        let token = String(url.split(separator: "token=").last ?? "")
        let client = Client(loop: loop)
        var socket: StreamConnection?
        let watchdog = LoopTimer(loop: loop)
        func end() {
            watchdog.close()
            socket?.close()
            server.close()
        }
        watchdog.start(after: 10_000) {
            Issue.record("timed out")
            end()
        }
        let request = { (target: String, extra: String) in "GET \(target) HTTP/1.1\r\nHost: \(host)\r\n\(extra)\r\n" }
        socket = try StreamConnection.connect(
            loop: loop, to: try SocketAddress(ip: "127.0.0.1", port: UInt16(host.split(separator: ":").last!)!)
        ) { _ in
            try? socket?.write(
                Array(
                    (request("/sessions", "")
                        + request("/sessions", "Host: evil.example\r\n").replacingOccurrences(
                            of: "Host: \(host)\r\nHost", with: "Host")
                        + request("/sessions?token=\(token)", "")).utf8))
            try? socket?.startReading { event in
                do { try client.read(event) } catch {
                    Issue.record("\(error)")
                    end()
                }
                if client.responses.count == 3,
                    let cookie = client.responses[2].head.value("Set-Cookie")?.split(separator: ";").first
                {
                    try? socket?.write(
                        Array(
                            (request("/sessions", "Cookie: \(cookie)\r\n") + request("/sessions?token=\(token)", "")
                                + request(
                                    "/sessions", "Cookie: \(cookie)\r\nX: \(String(repeating: "a", count: 20_000))\r\n"))
                                .utf8))
                }
                if client.responses.count == 6 { end() }
            }
        }
        _ = loop.run()
        #expect(loop.close())
        let statuses = client.responses.map { $0.head.status ?? 0 }
        #expect(
            statuses == [403, 403, 303, 200, 403, 431],
            "no secret; wrong Host; the secret; the cookie; the secret again; a head too large")
        #expect(client.responses.first?.head.value("Content-Security-Policy")?.contains("script-src 'self'") == true)
        #expect(client.responses[safe: 2]?.head.value("Location") == "/sessions")
        #expect(client.responses[safe: 2]?.head.value("Set-Cookie")?.contains("HttpOnly; SameSite=Strict") == true)
        let page = String(decoding: client.responses[safe: 3]?.body ?? [], as: UTF8.self)
        #expect(page.contains("&lt;script&gt;x&lt;/script&gt;\\x1b[2J"))
        #expect(!page.contains("<script>x"))
        #expect(page.contains("Verified."))
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
