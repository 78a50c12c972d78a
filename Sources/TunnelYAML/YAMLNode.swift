/// One node of a YAML document, with the line it starts on (1-based) for messages.
///
/// Only what the settings and kubeconfig readers need: scalars keep their text and whether they
/// were plain (unquoted), so `~`, `null` and an empty value can be told from the string "null";
/// mappings keep every entry in order, duplicates included, so a reader can refuse them by line.
public struct YAMLNode: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        /// `plain` is false for quoted and block (`|`, `>`) scalars.
        case scalar(String, plain: Bool)
        case mapping([Entry])
        case sequence([YAMLNode])
    }

    public struct Entry: Sendable, Equatable {
        public let key: YAMLNode
        public let value: YAMLNode
    }

    public let content: Content
    public let line: Int

    public init(_ content: Content, line: Int) {
        self.content = content
        self.line = line
    }

    /// The text of a scalar (null-looking ones too); nil for mappings and sequences.
    public var string: String? {
        guard case .scalar(let text, _) = content else { return nil }
        return text
    }

    public var mapping: [Entry]? {
        guard case .mapping(let entries) = content else { return nil }
        return entries
    }

    public var sequence: [YAMLNode]? {
        guard case .sequence(let items) = content else { return nil }
        return items
    }

    /// The value of the first entry whose key is the scalar `key`; nil when absent or not a mapping.
    public subscript(key: String) -> YAMLNode? {
        mapping?.first { $0.key.string == key }?.value
    }

    /// A plain `~`, `null` (any of YAML's spellings) or nothing at all: YAML's null.
    public var isNull: Bool {
        guard case .scalar(let text, plain: true) = content else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(text)
    }

    /// YAML 1.1's booleans as the kubeconfig writers use them (true/false, yes/no, on/off, in
    /// the three cases YAML allows), plain only; nil for anything else, "true" in quotes included.
    public var bool: Bool? {
        guard case .scalar(let text, plain: true) = content else { return nil }
        for word in ["true", "yes", "on"] where [word, word.capitalized, word.uppercased()].contains(text) {
            return true
        }
        for word in ["false", "no", "off"] where [word, word.capitalized, word.uppercased()].contains(text) {
            return false
        }
        return nil
    }

    /// What the node is, for messages: "single value", "mapping" or "list".
    public var shape: String {
        switch content {
        case .scalar: return "single value"
        case .mapping: return "mapping"
        case .sequence: return "list"
        }
    }
}

extension String {
    /// ASCII capitalisation (`true` → `True`), which is all YAML's boolean spellings need.
    fileprivate var capitalized: String { prefix(1).uppercased() + dropFirst() }
}
