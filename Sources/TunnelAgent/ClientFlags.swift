/// The command line of the edge agent (`tunnel-client`, and `tunnel client`), parsed by a small
/// strict parser of its own rather than swift-argument-parser: argument-parser's reflection at
/// start and the FoundationEssentials it links cost the agent resident memory (docs/BENCHMARKS.md,
/// "Edge agent footprint"). Every flag comes from the client's schema, so a setting cannot lack one.
public struct ClientInvocation: Sendable, Equatable {
    /// What the command line asks for.
    public enum Action: Sendable, Equatable {
        case run
        case help
        case version
    }

    public var action: Action = .run
    /// `--config`: the config file, when given.
    public var config: String?
    /// `--token`: a join token, used only while the node has no certificate.
    public var token: String?
    /// `--check-config`: print the resolved settings and exit.
    public var checkConfig = false
    /// The schema settings given as flags, keyed by schema key; a singular flag
    /// (`--service`) adds to its map's key (`services`).
    public var flags: [String: [String]] = [:]

    public init() {}
}

/// One flag the agent knows, for parsing and for `--help`.
struct ClientFlag {
    enum Target {
        case setting(String)
        case config
        case token
        case checkConfig
        case version
        case help
    }

    let name: String
    let target: Target
    /// nil for a flag that takes no value.
    let valueName: String?
    let repeatable: Bool
    let help: String
}

public enum ClientFlags {
    /// The flags in `--help`'s order: `--config`, the schema's (a map's singular flag after it),
    /// `--token` after the identity settings, then the switches.
    static let all: [ClientFlag] = {
        let schema = Schemas.client
        var flags = [
            ClientFlag(
                name: "--config", target: .config, valueName: "path", repeatable: false,
                help: "Config file (default \(schema.defaultConfigPath) if it exists; env TUNNEL_CONFIG)")
        ]
        for spec in schema.settings {
            let isMap = if case .map = spec.kind { true } else { false }
            flags.append(
                ClientFlag(
                    name: spec.flagName, target: .setting(spec.key), valueName: spec.valueName, repeatable: isMap,
                    help: spec.fullHelp))
            if let singular = spec.singularFlag {
                flags.append(
                    ClientFlag(
                        name: "--\(singular)", target: .setting(spec.key), valueName: "k=v", repeatable: true,
                        help: "One entry KEY=VALUE of \(spec.flagName); repeatable"))
            }
            if spec.key == "node-name" {
                flags.append(
                    ClientFlag(
                        name: "--token", target: .token, valueName: "token", repeatable: false,
                        help: "Join token from `tunnel token create`; used only while the node has no certificate"))
            }
        }
        flags += [
            ClientFlag(
                name: "--check-config", target: .checkConfig, valueName: nil, repeatable: false,
                help: "Print the resolved settings with their sources and exit"),
            ClientFlag(
                name: "--version", target: .version, valueName: nil, repeatable: false, help: "Show the version."),
            ClientFlag(name: "-h, --help", target: .help, valueName: nil, repeatable: false, help: "Show this help."),
        ]
        return flags
    }()

    /// Parses `arguments` (without the program name). Every argument is a known flag: an unknown
    /// flag, a stray word, a missing value or a single-valued flag given twice is refused with
    /// one message naming it and exit code 2. `--flag value` and `--flag=value` both work.
    public static func parse(_ arguments: [String], command: String) throws(CommandFailure) -> ClientInvocation {
        var invocation = ClientInvocation()
        var seen: Set<String> = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            let (name, inlineValue) = split(argument)
            guard let flag = flag(named: name) else { throw unknown(argument, command: command) }
            var value: String?
            if flag.valueName != nil {
                if let inlineValue {
                    value = inlineValue
                } else if index < arguments.count {
                    value = arguments[index]
                    index += 1
                } else {
                    throw CommandFailure.usage("\(name) needs a value: \(name) <\(flag.valueName!)>", .usage)
                }
            } else if inlineValue != nil {
                throw CommandFailure.usage("\(name) takes no value; give it alone", .usage)
            }
            if !flag.repeatable, !seen.insert(name).inserted {
                throw CommandFailure.usage("\(name) is given twice; give it once", .usage)
            }
            apply(flag.target, value, to: &invocation)
        }
        return invocation
    }

    private static func split(_ argument: String) -> (name: String, value: String?) {
        guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else { return (argument, nil) }
        return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
    }

    private static func flag(named name: String) -> ClientFlag? {
        if name == "-h" || name == "--help" { return all.first { if case .help = $0.target { true } else { false } } }
        return all.first { $0.name == name }
    }

    private static func apply(_ target: ClientFlag.Target, _ value: String?, to invocation: inout ClientInvocation) {
        switch target {
        case .setting(let key): invocation.flags[key, default: []].append(value ?? "")
        case .config: invocation.config = value
        case .token: invocation.token = value
        case .checkConfig: invocation.checkConfig = true
        case .version: if invocation.action == .run { invocation.action = .version }
        case .help: invocation.action = .help
        }
    }

    private static func unknown(_ argument: String, command: String) -> CommandFailure {
        let shown = argument.count > 64 ? String(argument.prefix(64)) + "…" : argument
        guard argument.hasPrefix("-") else {
            return .usage(
                "unexpected argument \"\(shown)\": \(command) takes only flags (see \(command) --help)", .usage)
        }
        let names = all.map(\.name).filter { $0.hasPrefix("--") }
        let hint = Suggest.closest(to: split(argument).name, in: names).map { " (did you mean \($0)?)" } ?? ""
        return .usage("unknown flag \(split(shown).name)\(hint); see \(command) --help", .usage)
    }
}

extension ClientFlags {
    /// `--help`: the abstract, the usage line and the flags.
    public static func helpText(command: String) -> String {
        let overview = wrap("OVERVIEW: \(abstract)", width: 80).joined(separator: "\n")
        return "\(overview)\n\nUSAGE: \(command) [<flags>]\n\n\(flagsText)"
    }

    /// Every flag with its help, wrapped to 80 columns.
    public static var flagsText: String {
        var lines = ["FLAGS:"]
        for flag in all {
            let label = "  " + flag.name + (flag.valueName.map { " <\($0)>" } ?? "")
            let body = wrap(flag.help, width: 80 - helpColumn)
            if label.count + 2 <= helpColumn {
                lines.append(label.padding(to: helpColumn) + body[0])
                lines += body.dropFirst().map { String(repeating: " ", count: helpColumn) + $0 }
            } else {
                lines.append(label)
                lines += body.map { String(repeating: " ", count: helpColumn) + $0 }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// What `tunnel client` does, for `tunnel --help` and the agent's own help.
    public static let abstract = "Run the edge agent: dial the gateway and serve the configured services."

    private static let helpColumn = 26

    /// Words of `text` in lines of at most `width` characters (a longer word gets a line of its own).
    package static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        return lines.isEmpty || !line.isEmpty ? lines + [line] : lines
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
