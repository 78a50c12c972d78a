import ArgumentParser

extension SettingsSchema {
    /// `--help` text for a setting's flag, straight from the schema.
    package func argumentHelp(_ key: String) -> ArgumentHelp {
        guard let spec = spec(key) else { preconditionFailure("no setting \(key) in \(command)") }
        return ArgumentHelp(spec.fullHelp, valueName: spec.valueName)
    }
}

/// `tunnel client`, as argument-parser lists it: in `tunnel --help`, `tunnel help client`, the man
/// page and the completions. Its flags are the edge agent's own parser's (`ClientFlags`), shared
/// with `tunnel-client`; `TunnelMain.run` hands `tunnel client …` straight to that parser, so
/// `tunnel client --help` prints the same text as `tunnel-client --help`.
public struct ClientCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "client", abstract: ClientFlags.abstract, discussion: ClientFlags.flagsText)

    @Argument(parsing: .captureForPassthrough, help: .hidden) var arguments: [String] = []

    public init() {}

    public func run() throws {
        try ClientAgent.perform(arguments, command: "tunnel client")
    }
}
