import ArgumentParser
import TunnelAgent

/// `tunnel-client`: the edge agent alone, `tunnel client` without the gateway, operator and
/// auditor commands, and so without Foundation, ICU, SQLite or libpq (docs/BENCHMARKS.md,
/// "Edge agent footprint"). Same flags, settings and behaviour as `tunnel client`.
@main
struct EdgeAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunnel-client",
        abstract: ClientCommand.configuration.abstract,
        version: VersionInfo.current.line)

    @OptionGroup var client: ClientCommand

    func run() throws {
        try client.run()
    }

    /// Failures print and exit as `tunnel`'s do.
    static func main() {
        CommandMain.run(EdgeAgent.self)
    }
}
