import TunnelHTTP

/// Turns an operator's request head into the head the node sends its API server: whatever the
/// operator said about credentials or identity is removed, and the node's own credential and
/// the identity the gateway asserted are set (`docs/KUBERNETES.md`).
///
/// It works on the parsed head and the caller encodes the result afresh, so what the API server
/// reads is exactly what was checked here: header names are compared without regard to case,
/// every duplicate goes, and a folded continuation line was already joined to its header by the
/// parser (so it is removed with it, or stays inside another header's value).
public struct ImpersonationRewrite: Sendable {
    /// The operator's name from its certificate.
    public let user: String
    /// The policy's groups for the operator on this node.
    public let groups: [String]
    /// The node's service-account token; nil when it authenticates with a client certificate.
    public let bearerToken: String?

    public init(user: String, groups: [String], bearerToken: String?) {
        self.user = user
        self.groups = groups
        self.bearerToken = bearerToken
    }

    /// Headers an operator must never set: credentials, impersonation, and the identity headers
    /// of Kubernetes' front-proxy authentication. Lower case; `*` ends a prefix.
    public static let removedHeaders = [
        "authorization", "proxy-authorization", "impersonate-*", "x-remote-user", "x-remote-group", "x-remote-extra-*",
    ]

    public func rewrite(_ head: HTTPHead) throws(KubeProxyError) -> HTTPHead {
        guard let method = head.method, method != "CONNECT" else {
            throw .protocolViolation("a CONNECT request is not carried to the Kubernetes API")
        }
        var rewritten = head
        rewritten.headers.removeAll { Self.isRemoved($0.name) }
        if let bearerToken { rewritten.headers.append(HTTPHeader("Authorization", "Bearer \(bearerToken)")) }
        rewritten.headers.append(HTTPHeader("Impersonate-User", user))
        for group in groups { rewritten.headers.append(HTTPHeader("Impersonate-Group", group)) }
        return rewritten
    }

    /// The head as bytes for the API server.
    public func encodedRewrite(_ head: HTTPHead) throws(KubeProxyError) -> [UInt8] {
        let rewritten = try rewrite(head)
        do { return try rewritten.encoded() } catch { throw .http(error) }
    }

    static func isRemoved(_ name: String) -> Bool {
        let lower = String(decoding: name.utf8.map { (65...90).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
        return removedHeaders.contains { pattern in
            pattern.hasSuffix("*") ? lower.hasPrefix(pattern.dropLast()) : lower == pattern
        }
    }
}
