import TunnelText

/// What the policy file may call things: the fleet's own name rules (`TunnelText.NameKind`), so a
/// name the policy accepts is one a node can actually have, plus the policy's own wildcards.
enum PolicyNames {
    static let roleRule = NameKind.role.rule
    static let serviceRule = NameKind.service.rule + ", or \"*\" for every service"
    static let nodePatternRule = "use 1–63 of a-z 0-9 '-' and the wildcards * (any run) and ? (one character); node names are lower-case DNS labels, so nothing else can match"
    static let labelKeyRule = NameKind.labelKey.rule
    static let labelValueRule = NameKind.labelValue.rule + ", or \"*\" (quoted) for any value"

    static let kubernetesGroupRule = "use 1–253 of A-Z a-z 0-9 and . _ - : @ /, starting with a letter or digit (e.g. edge-viewers or example.com:ops)"

    /// Kubernetes group names as the policy may assert them in `Impersonate-Group`: Kubernetes
    /// itself takes any string, but these travel in HTTP headers and audit lines, so no spaces,
    /// commas or control characters.
    static func isKubernetesGroup(_ group: String) -> Bool {
        let bytes = Array(group.utf8)
        guard (1...253).contains(bytes.count), isAlnum(bytes[0]) else { return false }
        return bytes.allSatisfy { isAlnum($0) || Array("._-:@/".utf8).contains($0) }
    }

    /// Role and service names: a lower-case DNS label.
    static func isDNSLabel(_ name: some StringProtocol) -> Bool {
        NameKind.role.accepts(name)
    }

    /// Node-name globs: the characters of a node name plus `*` and `?`. Anything else (upper
    /// case, `.`, `[`) could never match a node, so it is refused rather than silently dead.
    static func isNodePattern(_ pattern: String) -> Bool {
        (1...63).contains(pattern.utf8.count) && pattern.utf8.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?")
        }
    }

    static func isLabelKey(_ key: String) -> Bool {
        NameKind.labelKey.accepts(key)
    }

    static func isLabelValue(_ value: String) -> Bool {
        NameKind.labelValue.accepts(value)
    }
}
