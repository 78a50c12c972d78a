import TunnelClient
import TunnelTLS
import TunnelText
import TunnelYAML

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Everything a command hands to `SettingsLoader.load` besides its schema.
public struct SettingsInput: Sendable {
    /// `--config PATH`, if given.
    public var configPath: String?
    /// The process environment (tests pass their own).
    public var environment: [String: String]
    /// Raw command-line values by schema key (`["gateway": ["gw:7443"]]`). A map key may
    /// carry several values (`k=v,k2=v2` each); they are merged. Flags that were not given
    /// are simply absent.
    public var flags: [String: [String]]
    /// The other schemas whose `TUNNEL_*` variables are legitimate in this environment and
    /// therefore ignored rather than refused (a laptop may set `TUNNEL_GATEWAY` for the
    /// operator commands and also run `tunnel ca`).
    public var knownSchemas: [SettingsSchema]

    public init(
        configPath: String? = nil, environment: [String: String], flags: [String: [String]] = [:],
        knownSchemas: [SettingsSchema] = Schemas.nodeRoles
    ) {
        self.configPath = configPath
        self.environment = environment
        self.flags = flags
        self.knownSchemas = knownSchemas
    }
}

/// Resolves a schema's values: default < config file < `TUNNEL_*` variables < flags.
///
/// Every problem is a `CommandFailure` with exit code 2 and a one-line message naming the
/// source (file:line, variable or flag), the problem and the fix.
public enum SettingsLoader {
    /// Names this many: `TUNNEL_CONFIG` picks the config file when `--config` is not given.
    public static let configEnvironmentName = "TUNNEL_CONFIG"
    /// Config files are small; a larger one is the wrong file.
    public static let configSizeLimit = 256 * 1024

    public static func load(_ schema: SettingsSchema, _ input: SettingsInput) throws(CommandFailure) -> ResolvedSettings
    {
        var layers = Layers()
        layers.applyDefaults(schema, environment: input.environment)
        // 2. The config file.
        let configFile = try locateConfigFile(schema, input)
        if let configFile {
            for (key, entry) in try readConfigFile(configFile, schema: schema, environment: input.environment) {
                layers.values[key] = entry.value
                layers.sources[key] = .file(path: configFile, line: entry.line)
            }
        }
        try layers.applyEnvironment(schema, input)
        try layers.applyFlags(schema, input)
        try layers.applyDerived(schema, configFile: configFile, environment: input.environment)
        try checkLogSourceRoots(schema, values: layers.values, sources: layers.sources)
        return ResolvedSettings(
            schema: schema, configFile: configFile, values: layers.values, sources: layers.sources)
    }

    /// The values found so far and where each came from; each layer overrides the one before.
    private struct Layers {
        var values: [String: SettingValue] = [:]
        var sources: [String: SettingSource] = [:]

        /// 1. The schema's defaults.
        mutating func applyDefaults(_ schema: SettingsSchema, environment env: [String: String]) {
            for spec in schema.settings {
                guard case .defaultValue(let text) = spec.requirement else { continue }
                let expanded = spec.kind == .path ? expandDefaultPath(text, environment: env) : text
                do {
                    values[spec.key] = try parse(expanded, as: spec, relativeTo: nil, environment: env)
                } catch {
                    preconditionFailure("schema \(schema.command): default of \(spec.key) is invalid: \(error)")
                }
                sources[spec.key] = .defaultValue
            }
        }

        /// 3. `TUNNEL_*` variables: this command's, others' known ones ignored, any other refused.
        mutating func applyEnvironment(_ schema: SettingsSchema, _ input: SettingsInput) throws(CommandFailure) {
            let env = input.environment
            let ownNames = Dictionary(uniqueKeysWithValues: schema.settings.map { ($0.environmentName, $0) })
            let otherNames = Set(
                input.knownSchemas.flatMap { $0.settings.map(\.environmentName) } + [configEnvironmentName])
            for name in env.keys.sorted() where name.hasPrefix("TUNNEL_") {
                guard let spec = ownNames[name] else {
                    if otherNames.contains(name) { continue }
                    // Suggest only this command's names: pointing at another command's variable would mislead.
                    let suggestion = Suggest.closest(to: name, in: Array(ownNames.keys))
                    let hint =
                        suggestion.map { "did you mean \($0)?" }
                        ?? "known: \(ownNames.keys.sorted().joined(separator: ", "))"
                    throw .usage(
                        "\(name): unknown setting for tunnel \(schema.command) (\(hint)); unset it or fix the name",
                        .configInvalid)
                }
                do {
                    values[spec.key] = try parse(env[name]!, as: spec, relativeTo: nil, environment: env)
                } catch {
                    throw .usage("\(name): \(error.text)", .configInvalid)
                }
                sources[spec.key] = .environment(name)
            }
        }

        /// 4. Flags; a map flag's values are merged, any other's last one wins.
        mutating func applyFlags(_ schema: SettingsSchema, _ input: SettingsInput) throws(CommandFailure) {
            let env = input.environment
            for spec in schema.settings {
                guard let raw = input.flags[spec.key], !raw.isEmpty else { continue }
                let flag = spec.singularFlag.map { "\(spec.flagName)/--\($0)" } ?? spec.flagName
                do {
                    if case .map = spec.kind {
                        var merged: [String: String] = [:]
                        for text in raw {
                            guard case .map(let part) = try parse(text, as: spec, relativeTo: nil, environment: env)
                            else {
                                continue
                            }
                            merged.merge(part) { _, new in new }
                        }
                        values[spec.key] = .map(merged)
                    } else {
                        values[spec.key] = try parse(raw.last!, as: spec, relativeTo: nil, environment: env)
                    }
                } catch {
                    throw .usage("\(flag): \(error.text)", .configInvalid)
                }
                sources[spec.key] = .flag(flag)
            }
        }

        /// 5. Defaults derived from other settings, then every required setting must be there.
        mutating func applyDerived(
            _ schema: SettingsSchema, configFile: String?, environment env: [String: String]
        ) throws(CommandFailure) {
            for spec in schema.settings {
                if case .derived(let derivation) = spec.requirement, values[spec.key] == nil {
                    switch derivation {
                    case .pathInside(let key, let component):
                        if case .path(let base)? = values[key] {
                            values[spec.key] = .path(base.hasSuffix("/") ? base + component : base + "/" + component)
                            sources[spec.key] = .derived(from: key)
                        }
                    case .hostOf(let key):
                        if case .hostPort(let hostPort)? = values[key] {
                            values[spec.key] = .string(hostPort.host)
                            sources[spec.key] = .derived(from: key)
                        } else if case .hostPorts(let list)? = values[key], let first = list.first {
                            values[spec.key] = .string(first.host)
                            sources[spec.key] = .derived(from: key)
                        }
                    }
                }
                if spec.requirement == .required {
                    if values[spec.key] == nil {
                        let file = configFile ?? expandDefaultPath(schema.defaultConfigPath, environment: env)
                        let flags = spec.singularFlag.map { "\(spec.flagName) or --\($0)" } ?? spec.flagName
                        throw .usage(
                            "missing required setting \"\(spec.key)\": set it in \(file), \(spec.environmentName) or \(flags)",
                            .configInvalid)
                    }
                }
            }
        }
    }

    /// `--config`, else `TUNNEL_CONFIG`, else the schema's default path if that file exists.
    /// An explicitly named file must exist.
    package static func locateConfigFile(_ schema: SettingsSchema, _ input: SettingsInput) throws(CommandFailure)
        -> String?
    {
        let explicit: (path: String, origin: String)?
        if let path = input.configPath {
            explicit = (path, "--config")
        } else if let path = input.environment[configEnvironmentName], !path.isEmpty {
            explicit = (path, configEnvironmentName)
        } else {
            explicit = nil
        }
        if let explicit {
            var path = (try? expandUserPath(explicit.path, environment: input.environment)) ?? explicit.path
            // Absolute, so that relative paths inside the file resolve against its directory.
            if !path.hasPrefix("/") { path = FileManager.default.currentDirectoryPath + "/" + path }
            guard FileManager.default.fileExists(atPath: path) else {
                throw .usage(
                    "\(explicit.origin): config file \(path) does not exist; check the path or leave \(explicit.origin) out to use \(expandDefaultPath(schema.defaultConfigPath, environment: input.environment))",
                    .configInvalid)
            }
            return path
        }
        let path = expandDefaultPath(schema.defaultConfigPath, environment: input.environment)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Reads and validates a config file: a YAML mapping of known keys, each at most once.
    package static func readConfigFile(_ path: String, schema: SettingsSchema, environment: [String: String])
        throws(CommandFailure) -> [String: (value: SettingValue, line: Int)]
    {
        let entries = try StrictYAML.readMapping(
            path: path, allowedKeys: schema.keys, what: "tunnel \(schema.command) setting", sizeLimit: configSizeLimit)
        let directory = directoryPart(of: path)
        var result: [String: (value: SettingValue, line: Int)] = [:]
        for entry in entries {
            let spec = schema.spec(entry.key)!
            do throws(ValueProblem) {
                let value: SettingValue
                if case .map = spec.kind {
                    value = try parseMapNode(entry.value, as: spec)
                } else {
                    guard let text = StrictYAML.scalarText(entry.value) else {
                        throw ValueProblem(
                            "expected a single value, not a \(entry.value.shape)\(spec.example.map { " (e.g. \(spec.key): \($0))" } ?? "")"
                        )
                    }
                    value = try parse(text, as: spec, relativeTo: directory, environment: environment)
                }
                result[entry.key] = (value, entry.line)
            } catch {
                throw .usage("\(path):\(entry.line): \(entry.key): \(error.text)", .configInvalid)
            }
        }
        return result
    }

    private static func parseMapNode(_ node: YAMLNode, as spec: SettingSpec) throws(ValueProblem) -> SettingValue {
        guard case .map(let entries) = spec.kind else { preconditionFailure() }
        guard let mapping = node.mapping else {
            throw ValueProblem("expected a mapping of NAME: VALUE lines, not a \(node.shape)")
        }
        var map: [String: String] = [:]
        for entry in mapping {
            guard let key = StrictYAML.scalarText(entry.key),
                let value = StrictYAML.scalarText(entry.value) ?? (entry.value.isNull ? "" : nil)
            else {
                throw ValueProblem("entries must be NAME: VALUE with plain values (line \(entry.key.line))")
            }
            guard map[key] == nil else { throw ValueProblem("\"\(key)\" appears twice") }
            try checkEntry(key, value, entries)
            map[key] = value
        }
        return .map(map)
    }

    private static func checkEntry(_ key: String, _ value: String, _ entries: MapEntries) throws(ValueProblem) {
        switch entries {
        case .labels:
            try Names.checked(key, as: .labelKey)
            try Names.checked(value, as: .labelValue)
        case .services:
            try Names.checked(key, as: .service)
            do {
                _ = try HostPort.parse(value, example: "127.0.0.1:22")
            } catch {
                throw ValueProblem("service \"\(key)\": \(error.text)")
            }
        case .logSources:
            guard NameKind.service.accepts(key) else {
                throw ValueProblem(
                    "invalid log source name \"\(key)\": use 1–63 lower-case letters, digits and '-' (e.g. syslog, app)"
                )
            }
            do {
                _ = try LogSource.parse(value)
            } catch {
                throw ValueProblem("log source \"\(key)\": \(error.message)")
            }
        }
    }

    /// Refuses a file log source outside its root directory, naming where the map was set.
    /// Lexical, after `..` is resolved; the client checks real paths again when it reads.
    package static func checkLogSourceRoots(
        _ schema: SettingsSchema, values: [String: SettingValue], sources: [String: SettingSource]
    ) throws(CommandFailure) {
        /// Names the culprit as other messages do: `file:line: key: `, or the variable or flag.
        func origin(_ key: String) -> String {
            switch sources[key] {
            case .file(let path, let line)?: "\(path):\(line): \(key): "
            case let source?: "\(source): "
            case nil: "\(key): "
            }
        }
        for spec in schema.settings {
            guard case .map(.logSources(let rootKey)) = spec.kind, case .map(let map)? = values[spec.key], !map.isEmpty,
                case .path(let rootText)? = values[rootKey]
            else { continue }
            guard rootText.hasPrefix("/") else {
                throw .usage(
                    "\(origin(rootKey))\"\(rootText)\" must be an absolute path (e.g. /var/log)", .configInvalid)
            }
            let root = LogPaths.normalize(rootText)
            for name in map.keys.sorted() {
                guard case .files(let pattern) = try? LogSource.parse(map[name]!),
                    !LogPaths.isInside(pattern, root: root)
                else { continue }
                throw .usage(
                    "\(origin(spec.key))\"\(name)\" is \(pattern), outside \(rootKey) \(root); serve only files under \(root), or set \(rootKey)",
                    .configInvalid)
            }
        }
    }

    /// Parses one textual value (from a variable, a flag, a default or a YAML scalar).
    public static func parse(
        _ text: String, as spec: SettingSpec, relativeTo directory: String?, environment: [String: String]
    ) throws(ValueProblem) -> SettingValue {
        switch spec.kind {
        case .string:
            return .string(text)
        case .path:
            guard !text.isEmpty else {
                throw ValueProblem("the path is empty\(spec.example.map { " (e.g. \($0))" } ?? "")")
            }
            var path = try expandUserPath(text, environment: environment)
            if let directory, !path.hasPrefix("/") { path = directory + "/" + path }
            return .path(path)
        case .hostPort:
            return .hostPort(try HostPort.parse(text, example: spec.example ?? "gateway.example.com:7443"))
        case .hostPorts:
            return .hostPorts(try HostPort.parseList(text, example: spec.example ?? "gateway.example.com:7443"))
        case .hostName:
            guard HostPort.isValidHost(text) || HostPort.isIPv6(text) else {
                throw ValueProblem(
                    "\"\(text)\" is not a host name or IP address (e.g. \(spec.example ?? "gateway.example.com"))")
            }
            return .string(text)
        case .duration:
            return .duration(try DurationText.parse(text))
        case .integer:
            guard let value = Int(text) else { throw ValueProblem("\"\(text)\" is not a whole number") }
            return .integer(value)
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "on", "1": return .bool(true)
            case "false", "no", "off", "0": return .bool(false)
            default: throw ValueProblem("\"\(text)\" is not true or false")
            }
        case .choice(let choices):
            guard choices.contains(text) else {
                let hint = Suggest.closest(to: text, in: choices).map { "did you mean \"\($0)\"? " } ?? ""
                throw ValueProblem("\"\(text)\" is not valid (\(hint)use one of: \(choices.joined(separator: ", ")))")
            }
            return .string(text)
        case .map(let entries):
            var map: [String: String] = [:]
            for item in text.split(separator: ",", omittingEmptySubsequences: true) {
                let item = item.trimmingASCIIWhitespace()
                guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                    throw ValueProblem(
                        "\"\(item)\" is not NAME=VALUE (write k=v,k2=v2\(spec.example.map { ", e.g. \($0)" } ?? ""))")
                }
                let key = String(item[..<equals])
                let value = String(item[item.index(after: equals)...])
                guard map[key] == nil else { throw ValueProblem("\"\(key)\" appears twice") }
                try checkEntry(key, value, entries)
                map[key] = value
            }
            return .map(map)
        }
    }

    /// `~` and `~/x` → `$HOME`, `$HOME/x`.
    public static func expandUserPath(_ path: String, environment: [String: String]) throws(ValueProblem) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        guard let home = environment["HOME"], home.hasPrefix("/") else {
            throw ValueProblem("\"\(path)\" needs $HOME, which is not set; use an absolute path")
        }
        return home + path.dropFirst()
    }

    /// Like `expandUserPath`, but `~/.config/` means `$XDG_CONFIG_HOME/` when that is set
    /// (only for schema defaults: an explicit `~/.config/x` means what it says).
    public static func expandDefaultPath(_ path: String, environment: [String: String]) -> String {
        if path.hasPrefix("~/.config/"), let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            return xdg + "/" + path.dropFirst("~/.config/".count)
        }
        return (try? expandUserPath(path, environment: environment)) ?? path
    }
}
