/// The server side of a SOCKS5 greeting and CONNECT request (RFC 1928), sans-IO, as far as
/// `tunnel kube-proxy` needs it: no authentication, CONNECT to a domain name only. kubectl
/// reaches a context's cluster through it when the kubeconfig says
/// `proxy-url: socks5://127.0.0.1:PORT`, and the name it asks for is the node's.
public struct SocksRequest: Sendable, Equatable {
    /// What `feed` found so far. Send `reply` first whatever the case (it may be empty).
    public enum Progress: Sendable, Equatable {
        /// Feed more bytes.
        case needMore(reply: [UInt8])
        /// The client asked to connect to `host`; answer with `succeeded` or `refused` after `reply`.
        case connect(reply: [UInt8], host: String, port: UInt16)
        /// Not something we serve: close after `reply`.
        case refuse(reply: [UInt8], reason: String)
    }

    /// Greeting plus request are at most 3 + 255 and 7 + 255 bytes; more is not SOCKS5.
    public static let maxBytes = 520

    private var buffer: [UInt8] = []
    private var greeted = false

    public init() {}

    /// The reply for a connected stream (bound address 0.0.0.0:0: nobody uses it).
    public static let succeeded: [UInt8] = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    /// "connection not allowed by ruleset".
    public static let refused: [UInt8] = [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]

    public mutating func feed(_ bytes: some Collection<UInt8>) -> Progress {
        buffer += bytes
        guard buffer.count <= Self.maxBytes else {
            return .refuse(reply: [], reason: "not a SOCKS5 client (too many bytes)")
        }
        if !greeted {
            guard buffer.count >= 2 else { return .needMore(reply: []) }
            guard buffer[0] == 5 else { return .refuse(reply: [], reason: "not a SOCKS5 client") }
            let count = Int(buffer[1])
            guard buffer.count >= 2 + count else { return .needMore(reply: []) }
            guard buffer[2..<(2 + count)].contains(0) else {
                return .refuse(reply: [5, 0xFF], reason: "the SOCKS5 client offers no method without authentication")
            }
            buffer.removeFirst(2 + count)
            greeted = true
            // The method choice goes before whatever the request (if already here) gets.
            return switch feed([]) {
            case .needMore(let reply): .needMore(reply: [5, 0] + reply)
            case .connect(let reply, let host, let port): .connect(reply: [5, 0] + reply, host: host, port: port)
            case .refuse(let reply, let reason): .refuse(reply: [5, 0] + reply, reason: reason)
            }
        }
        guard buffer.count >= 5 else { return .needMore(reply: []) }
        guard buffer[0] == 5, buffer[1] == 1, buffer[2] == 0 else {
            return .refuse(reply: [5, 7, 0, 1, 0, 0, 0, 0, 0, 0], reason: "only SOCKS5 CONNECT is served")
        }
        guard buffer[3] == 3 else {
            return .refuse(
                reply: [5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
                reason: "connect by node name (the kubeconfig's server is http://NODE), not by address")
        }
        let length = Int(buffer[4])
        guard buffer.count >= 5 + length + 2 else { return .needMore(reply: []) }
        let host = String(decoding: buffer[5..<(5 + length)], as: UTF8.self)
        let port = UInt16(buffer[5 + length]) << 8 | UInt16(buffer[6 + length])
        return .connect(reply: [], host: host, port: port)
    }
}
