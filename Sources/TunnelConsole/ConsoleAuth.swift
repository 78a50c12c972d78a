import Foundation

/// Who may read: whoever holds the URL the console printed, as Jupyter does it. The secret in
/// the URL works once and is exchanged for an HttpOnly, SameSite=Strict session cookie (so it
/// is not left in the browser history, the address bar or a Referer), and the browser is sent
/// on to the same address without it. When the console listens on loopback, requests must name
/// a loopback host too, so a web page elsewhere cannot reach it through DNS rebinding.
struct ConsoleAuth {
    static let cookieName = "tunnel_console"
    let secret: String
    let cookie: String
    let allowedHosts: Set<String>?
    private(set) var secretUsed = false

    enum Decision: Equatable {
        case allowed
        /// The secret was right: set the cookie, then redirect to `location`.
        case exchange(location: String)
        case refused(String)
    }

    init(listenHost: String, port: UInt16) {
        secret = Self.randomHex(bytes: 32)
        cookie = Self.randomHex(bytes: 32)
        let loopback = listenHost == "::1" || listenHost.hasPrefix("127.")
        allowedHosts =
            loopback ? ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)", "\(listenHost):\(port)"] : nil
    }

    mutating func decide(host: String?, cookieHeader: [String], target: RequestTarget, rawTarget: String) -> Decision {
        if let allowedHosts, !allowedHosts.contains(host ?? "") {
            return .refused("this console answers only to a loopback address, not Host \(host ?? "(none)")")
        }
        if let offered = target["token"] {
            guard !secretUsed, Self.same(offered, secret) else {
                return .refused(
                    "that URL's secret is wrong or was already used; restart `tunnel audit serve` for a new one")
            }
            secretUsed = true
            let rest = target.parameters.filter { $0.name != "token" }.map {
                "\(RequestTarget.encode($0.name))=\(RequestTarget.encode($0.value))"
            }
            let path = target.path == "/" ? "/sessions" : target.path
            return .exchange(location: path + (rest.isEmpty ? "" : "?" + rest.joined(separator: "&")))
        }
        let presented = cookieHeader.flatMap { $0.split(separator: ";") }.compactMap { pair -> String? in
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return parts.count == 2 && parts[0] == Self.cookieName ? parts[1] : nil
        }
        return presented.contains { Self.same($0, cookie) }
            ? .allowed
            : .refused("open the URL `tunnel audit serve` printed; this browser has no session with the console")
    }

    var setCookie: String { "\(Self.cookieName)=\(cookie); HttpOnly; SameSite=Strict; Path=/" }

    /// Compares without stopping at the first difference, so timing does not reveal a prefix.
    static func same(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8), b = Array(right.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// From the system generator, which on Linux reads getrandom(2).
    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}
