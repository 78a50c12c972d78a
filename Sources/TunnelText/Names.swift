/// The kinds of name `tunnel` accepts from anyone — a node, an operator, a config file, a policy —
/// each with one ASCII rule (docs/TUNNEL.md §6). Names are checked where they come in, before
/// anything is looked up, recorded or listed; past that door every name is ASCII, so Swift's
/// `String` equality (which treats canonically equivalent Unicode as equal: the Kelvin sign
/// U+212A equals `K`) coincides with comparing bytes, the way policy globs, labels, the store
/// and audit filters do.
public enum NameKind: Sendable, CaseIterable {
    /// A node: a lower-case DNS label, as ssh lower-cases the `NODE.tunnel` host names.
    case node
    /// A service a node offers, and a policy role: a lower-case DNS label too.
    case service
    case role
    /// Kubernetes label keys and values.
    case labelKey
    case labelValue
    /// The public part of a join token: exactly 8 lower-case hex digits.
    case tokenID
    /// An operator: letters, digits, `.`, `_`, `-`, `@` (room for e-mail-like names).
    case user
    /// A key of a stream's `parameters` (`lines`, `follow`, `cols`): a lower-case DNS label.
    case parameterKey
    /// A Kubernetes group the policy asserts in `Impersonate-Group`: Kubernetes takes any
    /// string, but these travel in HTTP headers and audit lines, so no spaces, commas or controls.
    case kubernetesGroup

    /// How messages call it: "node name".
    public var noun: String {
        switch self {
        case .node: "node name"
        case .service: "service name"
        case .role: "role name"
        case .labelKey: "label key"
        case .labelValue: "label value"
        case .tokenID: "token id"
        case .user: "user name"
        case .parameterKey: "parameter key"
        case .kubernetesGroup: "Kubernetes group"
        }
    }

    /// The rule as a person fixing the name reads it.
    public var rule: String {
        switch self {
        case .node:
            "use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. node-17)"
        case .service:
            "use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. ssh, k3s-api)"
        case .role:
            "use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. vendor-acme)"
        case .labelKey:
            "use [PREFIX/]NAME, NAME being 1–63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, PREFIX a lower-case DNS name (e.g. site or example.com/rack)"
        case .labelValue: "use at most 63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit"
        case .tokenID: "a token id is exactly 8 lower-case hex digits (the second part of tnl1.ID.SECRET.CAHASH)"
        case .user:
            "use 1–64 of letters, digits, '.', '_', '-', '@', starting with a letter or digit (e.g. alice or alice@example.com)"
        case .parameterKey:
            "use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. lines)"
        case .kubernetesGroup:
            "use 1–253 of A-Z a-z 0-9 and . _ - : @ /, starting with a letter or digit (e.g. edge-viewers or example.com:ops)"
        }
    }

    /// Whether `name` follows the rule. Looks at UTF-8 bytes only, so no Unicode alias passes.
    public func accepts(_ name: some StringProtocol) -> Bool {
        switch self {
        case .node, .service, .role, .parameterKey: NameRules.isDNSLabel(name.utf8)
        case .labelKey: NameRules.isLabelKey(name)
        case .labelValue: name.isEmpty || NameRules.isLabelName(name.utf8)
        case .tokenID: name.utf8.count == 8 && name.utf8.allSatisfy(NameRules.isLowerHex)
        case .user: NameRules.isUserName(name.utf8)
        case .kubernetesGroup: NameRules.isKubernetesGroup(name.utf8)
        }
    }
}

/// A name that breaks its rule: one sentence naming it (escaped, so it prints safely) and the rule.
public struct NameProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public let kind: NameKind
    public let name: String

    public init(kind: NameKind, name: String) {
        self.kind = kind
        self.name = name
    }

    /// At most this many characters of the name are quoted, so a 4 KB name makes no 4 KB message.
    public static let quotedLength = 80

    public var message: String {
        let shown = InertText.escape(name)
        let quoted = shown.count > Self.quotedLength ? shown.prefix(Self.quotedLength) + "…" : shown
        return "invalid \(kind.noun) \"\(quoted)\": \(kind.rule)"
    }
    public var description: String { message }
}

public enum Names {
    /// `name` if it follows the rule of `kind`, else a `NameProblem` saying why.
    @discardableResult
    public static func check(_ name: String, as kind: NameKind) throws(NameProblem) -> String {
        guard kind.accepts(name) else { throw NameProblem(kind: kind, name: name) }
        return name
    }

    /// Every key and value of `labels`, checked; the first bad one is the problem.
    public static func checkLabels(_ labels: [String: String]) throws(NameProblem) {
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            try check(key, as: .labelKey)
            try check(value, as: .labelValue)
        }
    }

    /// Whether two names are the same bytes: what routing, globs, labels and audit filters mean
    /// by equal, unlike `String.==`.
    public static func same(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// `text` with only `A-Z` lowered: `String.lowercased()` would turn the Kelvin sign into `k`.
    public static func asciiLowercased(_ text: some StringProtocol) -> String {
        String(
            decoding: text.utf8.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 + 32 : $0 },
            as: UTF8.self)
    }
}

/// The byte-level rules behind `NameKind`.
enum NameRules {
    static func isDNSLabel(_ bytes: some Collection<UInt8>) -> Bool {
        guard (1...63).contains(bytes.count), let first = bytes.first, let last = Array(bytes).last else {
            return false
        }
        return isLowerAlnum(first) && isLowerAlnum(last)
            && bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// Kubernetes label keys: an optional lower-case DNS-subdomain prefix (at most 253 bytes) and `/`, then a name.
    static func isLabelKey(_ key: some StringProtocol) -> Bool {
        let parts = key.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            return isLabelName(parts[0])
        case 2:
            let prefix = parts[0]
            return prefix.count <= 253
                && prefix.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy {
                    isDNSLabel($0)
                }
                && isLabelName(parts[1])
        default:
            return false
        }
    }

    /// 1–63 of `A-Z a-z 0-9 . _ -`, starting and ending with a letter or digit.
    static func isLabelName(_ bytes: some Collection<UInt8>) -> Bool {
        guard (1...63).contains(bytes.count), let first = bytes.first, let last = Array(bytes).last else {
            return false
        }
        return isAlnum(first) && isAlnum(last)
            && bytes.allSatisfy {
                isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            }
    }

    /// 1–64 of `A-Z a-z 0-9 . _ - @`, starting with a letter or digit.
    static func isUserName(_ bytes: some Collection<UInt8>) -> Bool {
        guard (1...64).contains(bytes.count), let first = bytes.first, isAlnum(first) else { return false }
        return bytes.allSatisfy {
            isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: "@")
        }
    }

    /// 1–253 of `A-Z a-z 0-9 . _ - : @ /`, starting with a letter or digit.
    static func isKubernetesGroup(_ bytes: some Collection<UInt8>) -> Bool {
        guard (1...253).contains(bytes.count), let first = bytes.first, isAlnum(first) else { return false }
        return bytes.allSatisfy { isAlnum($0) || Array("._-:@/".utf8).contains($0) }
    }

    static func isLowerHex(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
    }

    static func isLowerAlnum(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }

    static func isAlnum(_ c: UInt8) -> Bool {
        isLowerAlnum(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
    }
}
