#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What kind of value a setting holds; decides how text from a file, an environment variable
/// or a flag is parsed and validated.
public enum SettingKind: Sendable, Equatable {
    /// Free text.
    case string
    /// A file or directory. `~/` means `$HOME/`; in a config file a relative path is relative to the file's directory.
    case path
    /// `host:port`, `1.2.3.4:7443` or `[::1]:7443` (see `HostPort.parse`).
    case hostPort
    /// One or more `host:port`, comma-separated: the replicas of a gateway cluster.
    case hostPorts
    /// A DNS name or an IP address (e.g. a TLS server name).
    case hostName
    /// A positive duration such as `30s`, `15m`, `24h` (see `DurationText`).
    case duration
    case integer
    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    case bool
    /// One of a fixed list of words.
    case choice([String])
    /// A string map. In YAML a mapping; in `TUNNEL_*` and flags `k=v,k2=v2`.
    case map(MapEntries)
}

/// How the entries of a map setting are validated.
public enum MapEntries: Sendable, Equatable {
    /// Kubernetes-like labels (`NameKind.labelKey`, `NameKind.labelValue`).
    case labels
    /// Service name → `host:port` to dial (`NameKind.service`).
    case services
    /// Source name → a file, a glob or `journald:UNIT` (see `LogSource.parse`); every file
    /// source must lie under the directory in the path setting `rootKey`, checked lexically
    /// once everything is resolved.
    case logSources(rootKey: String)
}

/// Where a setting's value comes from when nobody sets it.
public enum SettingRequirement: Sendable, Equatable {
    /// Must be set somewhere.
    case required
    /// May stay unset.
    case optional
    /// This text, parsed like an environment variable's value (`"30s"`, `"0.0.0.0:7443"`, `""` for an empty map).
    /// A path default starting with `~/.config/` lives in `$XDG_CONFIG_HOME` when that is set.
    case defaultValue(String)
    /// Computed from another setting after everything else is resolved.
    case derived(SettingDerivation)
}

public enum SettingDerivation: Sendable, Equatable {
    /// `<value of key>/<component>` (e.g. `pki-dir` = `DATA-DIR/pki`).
    case pathInside(key: String, component: String)
    /// The host of the `hostPort` setting `key` (e.g. `server-name` = the gateway's host).
    case hostOf(key: String)
}

/// One setting of a command: its name, kind, default and one-line help.
public struct SettingSpec: Sendable, Equatable {
    /// kebab-case, e.g. `data-dir`. The YAML key and the flag `--data-dir` use it as is.
    public let key: String
    public let kind: SettingKind
    public let requirement: SettingRequirement
    public let help: String
    /// A valid value, shown in error messages ("(e.g. …)"); nil uses a generic one.
    public let example: String?
    /// For maps: a singular, repeatable flag that adds one `k=v` entry (`--node-label site=berlin`).
    public let singularFlag: String?

    public init(
        _ key: String, _ kind: SettingKind, _ requirement: SettingRequirement, help: String, example: String? = nil,
        singularFlag: String? = nil
    ) {
        self.key = key
        self.kind = kind
        self.requirement = requirement
        self.help = help
        self.example = example
        self.singularFlag = singularFlag
    }

    /// `TUNNEL_` + key upper-cased with `-` → `_` (`data-dir` → `TUNNEL_DATA_DIR`).
    public var environmentName: String { SettingSpec.environmentName(for: key) }
    /// `--data-dir`.
    public var flagName: String { "--\(key)" }

    public static func environmentName(for key: String) -> String {
        "TUNNEL_" + key.uppercased().replacing("-", with: "_")
    }

    /// The help line with the default and the variable, for `--help` and docs.
    public var fullHelp: String {
        var extras: [String] = []
        switch requirement {
        case .required: extras.append("required")
        case .optional: break
        case .defaultValue(let text): extras.append("default: \(text.isEmpty ? "none" : text)")
        case .derived(.pathInside(let key, let component)): extras.append("default: \(key.uppercased())/\(component)")
        case .derived(.hostOf(let key)): extras.append("default: the host of \(key)")
        }
        extras.append("env \(environmentName)")
        return "\(help) (\(extras.joined(separator: "; ")))"
    }
}

/// The settings of one command, plus where its config file lives by default.
public struct SettingsSchema: Sendable, Equatable {
    /// The command, as typed after `tunnel` (`gateway`, `client`, `operator`); used in messages.
    public let command: String
    /// Read when `--config` (or `TUNNEL_CONFIG`) is not given and the file exists.
    /// `~/.config/` here means `$XDG_CONFIG_HOME` when that is set.
    public let defaultConfigPath: String
    public let settings: [SettingSpec]

    public init(command: String, defaultConfigPath: String, settings: [SettingSpec]) {
        precondition(Set(settings.map(\.key)).count == settings.count, "duplicate setting in schema \(command)")
        self.command = command
        self.defaultConfigPath = defaultConfigPath
        self.settings = settings
    }

    public func spec(_ key: String) -> SettingSpec? {
        settings.first { $0.key == key }
    }

    public var keys: [String] { settings.map(\.key) }
}

/// A parsed, validated value.
public enum SettingValue: Sendable, Equatable {
    case string(String)
    case path(String)
    case hostPort(HostPort)
    case hostPorts([HostPort])
    case duration(Duration)
    case integer(Int)
    case bool(Bool)
    case map([String: String])

    /// The value as it could be written back into a config file or variable.
    public var text: String {
        switch self {
        case .string(let s), .path(let s): return s
        case .hostPort(let h): return h.description
        case .hostPorts(let list): return list.map(\.description).joined(separator: ",")
        case .duration(let d): return DurationText.format(d)
        case .integer(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .map(let m): return m.keys.sorted().map { "\($0)=\(m[$0]!)" }.joined(separator: ",")
        }
    }
}

/// Where a resolved value came from, for `--check-config` output and for messages.
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case defaultValue
    case derived(from: String)
    case file(path: String, line: Int)
    case environment(String)
    case flag(String)

    public var description: String {
        switch self {
        case .defaultValue: return "default"
        case .derived(let key): return "derived from \(key)"
        case .file(let path, let line): return "\(path):\(line)"
        case .environment(let name): return name
        case .flag(let name): return name
        }
    }
}

/// The outcome of loading: every setting that has a value, with its source. Read it through the
/// role's typed settings (`DeclaredSettings`); `report()` prints the provenance.
public struct ResolvedSettings: Sendable, Equatable {
    public let schema: SettingsSchema
    /// The config file that was read, if any.
    public let configFile: String?
    public let values: [String: SettingValue]
    public let sources: [String: SettingSource]

    public init(
        schema: SettingsSchema, configFile: String?, values: [String: SettingValue], sources: [String: SettingSource]
    ) {
        self.schema = schema
        self.configFile = configFile
        self.values = values
        self.sources = sources
    }

    /// `key: value  # source` lines in schema order, for `--check-config`.
    public func report() -> String {
        var lines: [String] = []
        if let configFile {
            lines.append("# config file: \(configFile)")
        } else {
            lines.append("# config file: none (\(schema.defaultConfigPath) does not exist)")
        }
        for spec in schema.settings {
            guard let value = values[spec.key] else {
                lines.append("# \(spec.key): unset")
                continue
            }
            let source = sources[spec.key].map { "  # \($0)" } ?? ""
            if case .map(let map) = value {
                lines.append("\(spec.key):\(map.isEmpty ? " {}" : "")\(source)")
                for key in map.keys.sorted() { lines.append("  \(yamlQuoted(key)): \(yamlQuoted(map[key]!))") }
            } else {
                lines.append("\(spec.key): \(yamlQuoted(value.text))\(source)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Double-quotes text for YAML when it is not a plain, safe word.
package func yamlQuoted(_ text: String) -> String {
    let safe =
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "./_-:".contains($0)) }
        && !["true", "false", "yes", "no", "on", "off", "null", "~"].contains(text.lowercased())
        && !text.hasPrefix("-") && !text.hasSuffix(":") && !text.contains(": ")
    if safe { return text }
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

extension String {
    package func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
