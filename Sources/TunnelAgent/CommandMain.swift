import Glibc
import TunnelText

/// How both binaries (`tunnel` and the edge agent `tunnel-client`) end: failures as
/// `tunnel: MESSAGE` with their fix and code on stderr, and the exit code.
public enum CommandMain {
    /// What the process prints and returns for an error thrown by parsing or `run()`.
    public struct Outcome: Sendable, Equatable {
        public let message: String
        public let toStandardError: Bool
        public let exitCode: Int32

        public init(message: String, toStandardError: Bool, exitCode: Int32) {
            self.message = message
            self.toStandardError = toStandardError
            self.exitCode = exitCode
        }
    }

    /// Failures quote peers (GOAWAY reasons, refusals): escaped, so they print as one inert line;
    /// its fix and code follow on a second line (docs/ERRORS.md).
    public static func outcome(of failure: CommandFailure) -> Outcome {
        Outcome(
            message: "tunnel: \(InertText.escape(failure.message))\n  \(failure.code.fixLine)",
            toStandardError: true, exitCode: failure.exitCode)
    }

    /// Prints `outcome` (stderr is written directly, unbuffered) and exits with its code.
    public static func finish(_ outcome: Outcome) -> Never {
        if !outcome.message.isEmpty {
            if outcome.toStandardError {
                var line = outcome.message + "\n"
                _ = line.withUTF8 { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            } else {
                print(outcome.message)
            }
        }
        exit(outcome.exitCode)
    }

    /// The edge agent's entry point (`tunnel-client`, and `tunnel client`): its own flag parser,
    /// then the client until a signal ends it.
    public static func runAgent(
        arguments: [String] = Array(CommandLine.arguments.dropFirst()), command: String = "tunnel-client"
    ) -> Never {
        do throws(CommandFailure) {
            try ClientAgent.perform(arguments, command: command)
            exit(0)
        } catch {
            finish(outcome(of: error))
        }
    }
}
