import TunnelText

/// What the policy file may call things: the fleet's own name rules (`TunnelText.NameKind`), so a
/// name the policy accepts is one a node can actually have, plus the policy's own wildcards.
enum PolicyNames {
    static let roleRule = NameKind.role.rule
    static let serviceRule = NameKind.service.rule + ", or \"*\" for every service"
    static let nodePatternRule =
        "use 1–63 of a-z 0-9 '-' and the wildcards * (any run) and ? (one character); node names are lower-case DNS labels, so nothing else can match"
    static let labelKeyRule = NameKind.labelKey.rule
    static let labelValueRule = NameKind.labelValue.rule + ", or \"*\" (quoted) for any value"

    static let kubernetesGroupRule = NameKind.kubernetesGroup.rule

    static func isKubernetesGroup(_ group: String) -> Bool {
        NameKind.kubernetesGroup.accepts(group)
    }

    /// Role and service names: a lower-case DNS label.
    static func isDNSLabel(_ name: some StringProtocol) -> Bool {
        NameKind.role.accepts(name)
    }

    /// Node-name globs: the characters of a node name plus `*` and `?`. Anything else (upper
    /// case, `.`, `[`) could never match a node, so it is refused rather than silently dead.
    static func isNodePattern(_ pattern: String) -> Bool {
        (1...63).contains(pattern.utf8.count)
            && pattern.utf8.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
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
