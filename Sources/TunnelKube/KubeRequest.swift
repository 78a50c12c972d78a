import TunnelHTTP

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What an API request asks for, as Kubernetes' own audit names it: read from the request line
/// the gateway relays, for the audit trail (`docs/AUDIT.md`, record `kube_request`).
public struct KubeRequest: Equatable, Sendable {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for a
    /// path that names no resource (`/version`, `/api`), the HTTP method in lower case.
    public var verb: String
    /// The request path without the query, at most `maxPathBytes`.
    public var path: String
    public var apiGroup: String?
    public var resource: String?
    public var subresource: String?
    public var namespace: String?
    public var name: String?
    /// The command of an `exec`, one element per argument.
    public var command: [String]?

    /// Longest path kept in the audit record; a longer one is cut and marked.
    public static let maxPathBytes = 1024
    /// Most exec arguments kept, and the longest each.
    public static let maxCommandArguments = 64
    public static let maxArgumentBytes = 1024

    public init(
        verb: String, path: String, apiGroup: String? = nil, resource: String? = nil, subresource: String? = nil,
        namespace: String? = nil, name: String? = nil, command: [String]? = nil
    ) {
        self.verb = verb
        self.path = path
        self.apiGroup = apiGroup
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.command = command
    }

    /// Reads a request head; nil for a response head.
    public init?(_ head: HTTPHead) {
        guard let method = head.method, let target = head.target else { return nil }
        let components = URLComponents(string: target)
        let rawPath = components?.percentEncodedPath ?? String(target.prefix { $0 != "?" })
        let query = components?.queryItems ?? []
        let path = components?.path ?? rawPath
        self.init(verb: method.lowercased(), path: Self.bounded(path, Self.maxPathBytes))
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        // /api/v1/... (core group) or /apis/GROUP/VERSION/...
        var rest: ArraySlice<String>
        switch segments.first {
        case "api" where segments.count >= 3: rest = segments[2...]
        case "apis" where segments.count >= 4:
            rest = segments[3...]
            apiGroup = segments[1]
        default: return
        }
        if rest.first == "namespaces", rest.count >= 3 {
            namespace = rest[rest.startIndex + 1]
            rest = rest.dropFirst(2)
        }
        resource = rest.first
        name = rest.dropFirst().first
        subresource = rest.dropFirst(2).first
        if resource == "namespaces", namespace == nil, let name { namespace = name }
        let watching = query.contains { $0.name == "watch" && ($0.value == "true" || $0.value == "1") }
        verb =
            switch method {
            case "GET", "HEAD": watching ? "watch" : (name == nil ? "list" : "get")
            case "POST": "create"
            case "PUT": "update"
            case "PATCH": "patch"
            case "DELETE": name == nil ? "deletecollection" : "delete"
            default: method.lowercased()
            }
        if subresource == "exec" || subresource == "attach" {
            let arguments = query.filter { $0.name == "command" }.prefix(Self.maxCommandArguments)
            if !arguments.isEmpty { command = arguments.map { Self.bounded($0.value ?? "", Self.maxArgumentBytes) } }
        }
    }

    private static func bounded(_ text: String, _ limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        return String(decoding: text.utf8.prefix(limit), as: UTF8.self) + "…"
    }
}
