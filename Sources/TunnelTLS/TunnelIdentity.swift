/// Who a certificate speaks for: a role and a name, carried as the single
/// `tunnel://ROLE/NAME` URI in the certificate's subjectAltName.
///
/// Identity comes only from this URI, matched exactly; the CN is informational.
public struct TunnelIdentity: Sendable, Hashable, CustomStringConvertible {
    public enum Role: String, Sendable, Hashable, CaseIterable {
        case node
        case `operator`
    }

    /// URI scheme prefix shared by all identity URIs.
    public static let uriScheme = "tunnel://"
    /// Names are short, printable and path-safe so they can appear in URIs, logs and file names.
    public static let maximumNameLength = 64

    public let role: Role
    public let name: String

    /// Validates `name`: 1–64 characters of `A–Z a–z 0–9 . _ - @`, starting with a letter or digit.
    public init(role: Role, name: String) throws {
        guard Self.isValidName(name) else {
            throw TLSError(
                .invalidIdentity,
                "invalid \(role.rawValue) name \"\(name)\": use 1–\(Self.maximumNameLength) characters of letters, digits, '.', '_', '-', '@', starting with a letter or digit"
            )
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

    private static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...maximumNameLength).contains(bytes.count) else { return false }
        func isAlphanumeric(_ c: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
        }
        guard isAlphanumeric(bytes[0]) else { return false }
        return bytes.allSatisfy { c in
            isAlphanumeric(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "@")
        }
    }
}
