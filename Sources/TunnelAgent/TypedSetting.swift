import Logging
import TunnelClient

/// A Swift type a setting's resolved value becomes in the typed settings; nil when the value
/// does not have the shape (a programming error in a declaration, or an entry that fails its
/// stricter parse).
public protocol SettingConvertible: Sendable {
    init?(setting: SettingValue)
}

extension String: SettingConvertible {
    public init?(setting: SettingValue) {
        switch setting {
        case .string(let text), .path(let text): self = text
        default: return nil
        }
    }
}

extension HostPort: SettingConvertible {
    public init?(setting: SettingValue) {
        guard case .hostPort(let address) = setting else { return nil }
        self = address
    }
}

extension Duration: SettingConvertible {
    public init?(setting: SettingValue) {
        guard case .duration(let duration) = setting else { return nil }
        self = duration
    }
}

extension Int: SettingConvertible {
    public init?(setting: SettingValue) {
        guard case .integer(let number) = setting else { return nil }
        self = number
    }
}

extension Bool: SettingConvertible {
    public init?(setting: SettingValue) {
        guard case .bool(let flag) = setting else { return nil }
        self = flag
    }
}

/// A map setting whose entries become `Value` (labels stay text; services become addresses).
extension Dictionary: SettingConvertible where Key == String, Value: SettingEntry {
    public init?(setting: SettingValue) {
        guard case .map(let entries) = setting else { return nil }
        var converted: [String: Value] = [:]
        for (key, text) in entries {
            guard let value = Value(entry: text) else { return nil }
            converted[key] = value
        }
        self = converted
    }
}

/// The value of one entry of a map setting, from its text (already validated by the loader).
public protocol SettingEntry: Sendable {
    init?(entry: String)
}

extension String: SettingEntry {
    public init?(entry: String) { self = entry }
}

extension HostPort: SettingEntry {
    public init?(entry: String) {
        guard let address = try? HostPort.parse(entry) else { return nil }
        self = address
    }
}

extension LogSource: SettingEntry {
    public init?(entry: String) {
        guard let source = try? LogSource.parse(entry) else { return nil }
        self = source
    }
}

/// Choice settings whose words are an enumeration's raw values.
extension SettingConvertible where Self: RawRepresentable, RawValue == String {
    public init?(setting: SettingValue) {
        guard case .string(let word) = setting else { return nil }
        self.init(rawValue: word)
    }
}

extension Logger.Level: SettingConvertible {}
extension LogFormat: SettingConvertible {}

/// One setting of a role, declared once: its spec (the key, and from it the `TUNNEL_*` name and
/// the flag; the kind, which decides validation; the default; the help) and the field of the
/// role's typed settings `Root` that its resolved value fills.
public struct Setting<Root>: Sendable {
    public let spec: SettingSpec
    private let assign: @Sendable (inout Root, SettingValue?) -> Bool

    /// A setting that always has a value: required, defaulted or derived.
    public init<Value: SettingConvertible>(
        _ key: String, _ kind: SettingKind, _ requirement: SettingRequirement,
        _ field: WritableKeyPath<Root, Value> & Sendable,
        help: String, example: String? = nil, singularFlag: String? = nil
    ) {
        precondition(requirement != .optional, "\(key): an optional setting fills an optional field")
        spec = SettingSpec(key, kind, requirement, help: help, example: example, singularFlag: singularFlag)
        assign = { root, value in
            guard let converted = value.flatMap(Value.init(setting:)) else { return false }
            root[keyPath: field] = converted
            return true
        }
    }

    /// A setting that may stay unset: its field is nil then.
    public init<Value: SettingConvertible>(
        _ key: String, _ kind: SettingKind, optional field: WritableKeyPath<Root, Value?> & Sendable,
        help: String, example: String? = nil
    ) {
        spec = SettingSpec(key, kind, .optional, help: help, example: example)
        assign = { root, value in
            guard let value else {
                root[keyPath: field] = nil
                return true
            }
            guard let converted = Value(setting: value) else { return false }
            root[keyPath: field] = converted
            return true
        }
    }

    /// Fills the field from `settings`. The loader has validated every value against its kind,
    /// so a failure here means a declaration's kind and field type disagree.
    func fill(_ root: inout Root, from settings: ResolvedSettings) throws(CommandFailure) {
        guard assign(&root, settings.values[spec.key]) else {
            throw .failed(
                "setting \(spec.key) of tunnel \(settings.schema.command) has no value of its declared kind (\(settings.values[spec.key]?.text ?? "unset")); this is a bug in its declaration",
                .configInvalid)
        }
    }
}

/// A role's typed settings, built from its declarations.
public protocol DeclaredSettings: Sendable {
    /// One declaration per setting, in the order `--help` and `--check-config` list them.
    static var declarations: [Setting<Self>] { get }
    /// The value the declarations fill: placeholders, each overwritten by its field's
    /// declaration on every load (`SettingsTests.everyFieldIsDeclared` checks the defaults).
    static var unfilled: Self { get }
}

extension DeclaredSettings {
    /// The typed settings of a load of `Self.declarations`' schema.
    public init(_ settings: ResolvedSettings) throws(CommandFailure) {
        var root = Self.unfilled
        for declaration in Self.declarations { try declaration.fill(&root, from: settings) }
        self = root
    }
}
