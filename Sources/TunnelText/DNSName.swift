/// The one rule for a DNS name the tunnel accepts (a gateway address, a name in the gateway's
/// certificate): labels of ASCII letters, digits and '-', not starting or ending with '-',
/// 1–63 bytes each, 253 in all, an optional final dot. No wildcards.
public enum DNSName {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        return trimmed.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
