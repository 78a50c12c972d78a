import ArgumentParser
import Foundation
import TunnelClient
import TunnelOperator

public struct LogsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a node's logs: the sources its client serves (files under its log root, journald units).",
        discussion: """
            tunnel logs node-17 app -n 20
            tunnel logs node-17 k3s -f --since 1h --grep error
            -n takes the last lines of each file (or of the journal) before --grep keeps those containing \
            the text, as `tail -n N | grep -F TEXT` would. --since skips files not modified that recently. \
            -f follows across log rotation until Ctrl-C.
            """)

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node") var node: String
    @Argument(help: "The log source, by the name in the node's log-sources (optional when the node has only one)")
    var source: String?
    @Flag(name: .shortAndLong, help: "Keep printing new lines, across log rotation, until Ctrl-C") var follow = false
    @Option(name: [.customShort("n"), .customLong("lines")], help: "How many of the last lines to print first")
    var lines = LogRequest.defaultLines
    @Option(
        help: ArgumentHelp(
            "Only files modified (journal entries written) this recently, e.g. 10m, 1h", valueName: "duration"))
    var since: String?
    @Option(
        help: ArgumentHelp(
            "Only lines containing this text (case-sensitive; a fixed string, not a pattern)", valueName: "text"))
    var grep: String?

    @OptionGroup var traffic: TrafficClassOption

    public init() {}

    public func run() throws {
        let node = try checkedNodeName(node)
        let request = try request()
        let (settings, logger) = try options.settingsAndLogger()
        let interactive = traffic.resolved(byUse: .bulk).isInteractive
        let code = try withOperatorSession(settings, logger: logger) { session in
            if let progress = DownloadProgress(session: session) { session.onFinish(progress.finish) }
            session.printLogs(node: node, parameters: request.parameters, interactive: interactive)
        }
        if code != 0 { throw ExitCode(code) }
    }

    /// The request the flags make, checked here with the node's own rules.
    func request() throws(CommandFailure) -> LogRequest {
        var request = LogRequest(source: source, lines: lines, follow: follow, grep: grep)
        if let since {
            do throws(ValueProblem) {
                request.sinceSeconds = DurationText.seconds(try DurationText.parse(since))
                guard request.sinceSeconds! >= 1 else { throw ValueProblem("\"\(since)\" is shorter than a second") }
            } catch {
                throw .usage("--since: \(error.text)", .usage)
            }
        }
        do {
            try request.validate()
        } catch {
            throw .usage(error.message, .usage)
        }
        return request
    }
}

/// A progress line for logs going into a file (`tunnel logs node-17 app -n 1000000 >app.log`):
/// the file's growth, read ten times a second. Nothing when stdout is a terminal (the lines are
/// the progress) or a pipe (its reader's business), nor when stderr is no terminal.
final class DownloadProgress {
    private let line: ProgressLine

    init?(session: OperatorSession) {
        var status = stat()
        guard isatty(STDERR_FILENO) == 1, fstat(STDOUT_FILENO, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            return nil
        }
        let start = Int64(status.st_size)
        let line = ProgressLine("downloading", total: nil, unit: .bytes)
        self.line = line
        session.every(milliseconds: 100) {
            var now = stat()
            if fstat(STDOUT_FILENO, &now) == 0 { line.update(Int64(now.st_size) - start) }
        }
    }

    func finish() {
        line.finish()
    }
}
