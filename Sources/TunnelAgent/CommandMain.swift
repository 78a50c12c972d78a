import ArgumentParser
import Glibc
import TunnelText

/// The entry point of both binaries (`tunnel` and the edge agent `tunnel-client`): runs a root
/// command, printing failures as `tunnel: MESSAGE` with their fix and code.
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

    /// `CommandFailure` → `tunnel: MESSAGE` with its code; argument-parser errors keep their
    /// text, but usage errors exit 2 (argument-parser's own default is 64).
    public static func outcome<Root: ParsableCommand>(of error: any Error, root: Root.Type) -> Outcome {
        if let failure = error as? CommandFailure {
            // Failures quote peers (GOAWAY reasons, refusals): escaped, so they print as one inert
            // line; its fix and code follow on a second line (docs/ERRORS.md).
            return Outcome(
                message: "tunnel: \(InertText.escape(failure.message))\n  \(failure.code.fixLine)",
                toStandardError: true, exitCode: failure.exitCode)
        }
        let code = Root.exitCode(for: error)
        let message = Root.fullMessage(for: error)
        if code == .success { return Outcome(message: message, toStandardError: false, exitCode: 0) }
        return Outcome(
            message: message, toStandardError: true,
            exitCode: code == .validationFailure ? CommandFailure.usageExitCode : code.rawValue)
    }

    public static func run<Root: ParsableCommand>(
        _ root: Root.Type, arguments: [String] = Array(CommandLine.arguments.dropFirst())
    ) -> Never {
        do {
            var command = try Root.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch {
            let outcome = outcome(of: error, root: root)
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
    }
}
