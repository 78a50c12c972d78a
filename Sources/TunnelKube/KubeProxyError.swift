import TunnelHTTP

/// Why a `kubernetes` stream was cut: the one error type of TunnelKube.
public enum KubeProxyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP did not parse or broke a limit.
    case http(HTTPError)
    /// Well-formed HTTP that this proxy does not carry (a CONNECT, too many pipelined requests).
    case protocolViolation(String)
    /// The request rate limit was exceeded.
    case rateLimited(perSecond: Int)

    public var description: String {
        switch self {
        case .http(let error): "\(error)"
        case .protocolViolation(let reason): reason
        case .rateLimited(let limit): "more than \(limit) requests per second on one connection"
        }
    }

    /// The status a proxy answers a client with before closing.
    public var responseStatus: Int {
        switch self {
        case .http(let error): error.responseStatus
        case .protocolViolation: 400
        case .rateLimited: 429
        }
    }
}
