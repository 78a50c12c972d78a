import TunnelText

/// Who a certificate speaks for: a role and a name, carried as the single
/// `tunnel://ROLE/NAME` URI in the certificate's subjectAltName.
///
/// Identity comes only from this URI, matched exactly; the CN is informational.
public struct TunnelIdentity: Sendable, Hashable, CustomStringConvertible {
    public enum Role: String, Sendable, Hashable, CaseIterable {
        case node
        case `operator`
        /// A gateway replica on a peer link (`tunnel://gateway/REPLICA`), issued by the node CA,
        /// which signs the gateway's own certificate too.
        case gateway
    }

    /// URI scheme prefix shared by all identity URIs.
    public static let uriScheme = "tunnel://"

    public let role: Role
    public let name: String

    /// Validates `name` by the fleet's rule for the role (`TunnelText.NameKind`): a node's and a
    /// replica's name is a lower-case DNS label, an operator's a user name.
    public init(role: Role, name: String) throws {
        let kind: NameKind = role == .operator ? .user : .node
        guard kind.accepts(name) else {
            throw TLSError(.invalidIdentity, NameProblem(kind: kind, name: name).message)
        }
        self.role = role
        self.name = name
    }

    /// Parses `tunnel://ROLE/NAME`; nil if `uri` is not a well-formed identity URI.
    public init?(uri: String) {
        guard uri.hasPrefix(Self.uriScheme) else { return nil }
        let rest = uri.dropFirst(Self.uriScheme.count)
        guard let slash = rest.firstIndex(of: "/"),
            let role = Role(rawValue: String(rest[..<slash])),
            let identity = try? TunnelIdentity(role: role, name: String(rest[rest.index(after: slash)...]))
        else { return nil }
        self = identity
    }

    /// `tunnel://node/node-17`
    public var uri: String {
        "\(Self.uriScheme)\(role.rawValue)/\(name)"
    }

    public var description: String { uri }
}
