import ArgumentParser
import Foundation
import Logging
import TunnelOperator
import TunnelWire

public struct ShellCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "Open a login shell on a node, or run a command there; the gateway records the session.",
        discussion: """
            The shell runs as the node's configured shell-user on a terminal of your terminal's size and \
            type. `tunnel shell` exits with the shell's exit status. Without a terminal on stdin the keys \
            come from stdin and its end is a Ctrl-D: echo 'uptime; exit 3' | tunnel shell node-17. \
            After --, a command runs through the login shell's -c instead, on a terminal too, and is recorded \
            the same way. One word is a command line as it is: tunnel shell node-17 -- 'uptime; df -h'. \
            Several words are each quoted, as exec would take them: tunnel shell node-17 -- sh -c 'exit 3'
            """)

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node (node-17)") var node: String
    @Argument(parsing: .postTerminator, help: "A command to run instead of an interactive shell, after --") var command:
        [String] = []
    @OptionGroup var traffic: TrafficClassOption

    public init() {}

    public func run() throws {
        let node = try checkedNodeName(node)
        let (settings, logger) = try options.settingsAndLogger()
        let size = LocalTerminal.size()
        let parameters: ShellParameters
        // Checked as the node checks them, so a TERM it would refuse is named here.
        do {
            parameters = try ShellParameters(
                ShellParameters(
                    term: ProcessInfo.processInfo.environment["TERM"] ?? "dumb", columns: size.columns, rows: size.rows,
                    command: shellCommandLine(command)
                ).dictionary)
        } catch {
            throw CommandFailure.usage(error.reason, .usage)
        }
        let interactive = LocalTerminal.isInteractive
        // Restored on every way out: returning, throwing, and exit() on a second signal.
        defer { LocalTerminal.restore() }
        if let failed = LocalTerminal.prepare(raw: interactive) {
            throw CommandFailure.failed(
                "cannot set up the terminal: \(String(cString: strerror(failed)))", .systemResource)
        }
        let interactiveTraffic = traffic.resolved(byUse: .interactive).isInteractive
        let code = try withOperatorSession(settings, logger: logger) { session in
            session.openShell(
                node: node, parameters: parameters, interactive: interactive, interactiveTraffic: interactiveTraffic)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
