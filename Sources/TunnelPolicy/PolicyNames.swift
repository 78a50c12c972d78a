/// What the policy file may call things. The rules match those of node names, service names and
/// labels elsewhere in `tunnel`, so a name the policy accepts is one a node can actually have.
enum PolicyNames {
    static let roleRule = "use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. vendor-acme)"
    static let serviceRule = "use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. ssh, k3s-api), or \"*\" for every service"
    static let nodePatternRule = "use 1–63 of a-z 0-9 '-' and the wildcards * (any run) and ? (one character); node names are lower-case DNS labels, so nothing else can match"
    static let labelKeyRule = "use [PREFIX/]NAME, NAME being 1–63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, PREFIX a lower-case DNS name (e.g. site or example.com/rack)"
    static let labelValueRule = "use at most 63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, or \"*\" (quoted) for any value"

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
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first, let last = bytes.last else { return false }
        return isLowerAlnum(first) && isLowerAlnum(last) && bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// Node-name globs: the characters of a node name plus `*` and `?`. Anything else (upper
    /// case, `.`, `[`) could never match a node, so it is refused rather than silently dead.
    static func isNodePattern(_ pattern: String) -> Bool {
        (1...63).contains(pattern.utf8.count) && pattern.utf8.allSatisfy {
            isLowerAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?")
        }
    }

    /// Kubernetes label keys: an optional DNS-subdomain prefix (at most 253 bytes) and `/`, then a name.
    static func isLabelKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            return isLabelName(parts[0])
        case 2:
            let prefix = parts[0]
            return prefix.utf8.count <= 253
                && prefix.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isDNSLabel)
                && isLabelName(parts[1])
        default:
            return false
        }
    }

    /// Kubernetes label values: empty, or a label name.
    static func isLabelValue(_ value: String) -> Bool {
        value.isEmpty || isLabelName(Substring(value))
    }

    private static func isLabelName(_ name: Substring) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first, let last = bytes.last else { return false }
        return isAlnum(first) && isAlnum(last) && bytes.allSatisfy {
            isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
    }

    private static func isLowerAlnum(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }

    private static func isAlnum(_ c: UInt8) -> Bool {
        isLowerAlnum(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
    }
}
