import ArgumentParser
import Glibc

extension CommandMain {
    /// `CommandFailure` → `tunnel: MESSAGE` with its code; argument-parser errors keep their
    /// text, but usage errors exit 2 (argument-parser's own default is 64).
    public static func outcome<Root: ParsableCommand>(of error: any Error, root: Root.Type) -> Outcome {
        if let failure = error as? CommandFailure { return outcome(of: failure) }
        let code = Root.exitCode(for: error)
        let message = Root.fullMessage(for: error)
        if code == .success { return Outcome(message: message, toStandardError: false, exitCode: 0) }
        return Outcome(
            message: message, toStandardError: true,
            exitCode: code == .validationFailure ? CommandFailure.usageExitCode : code.rawValue)
    }

    /// Parses `arguments` as `Root`'s command tree and runs the command they name.
    public static func run<Root: ParsableCommand>(
        _ root: Root.Type, arguments: [String] = Array(CommandLine.arguments.dropFirst())
    ) -> Never {
        do {
            var command = try Root.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch {
            finish(outcome(of: error, root: root))
        }
    }
}
