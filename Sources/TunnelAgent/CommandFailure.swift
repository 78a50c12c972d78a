/// The one error type every `tunnel` command throws.
///
/// `TunnelMain.run` prints it as `tunnel: <message>` on stderr, with no stack trace and no
/// "Error:" prefix, and exits with `exitCode`. Messages are one line that names the culprit
/// (file and line, variable or flag), what is wrong, and how to fix it.
public struct CommandFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Exit code for usage and configuration errors (bad flag, bad config file, missing setting).
    public static let usageExitCode: Int32 = 2
    /// Exit code for everything else that went wrong (a file could not be written, a refused overwrite).
    public static let failureExitCode: Int32 = 1

    public let message: String
    /// Chosen where the failure is made; there is no default, so every failure has one.
    public let code: FailureCode
    public let exitCode: Int32

    public init(_ message: String, code: FailureCode, exitCode: Int32 = CommandFailure.failureExitCode) {
        self.message = message
        self.code = code
        self.exitCode = exitCode
    }

    /// A usage or configuration error (exit code 2).
    public static func usage(_ message: String, _ code: FailureCode) -> CommandFailure {
        CommandFailure(message, code: code, exitCode: usageExitCode)
    }

    /// A runtime failure (exit code 1).
    public static func failed(_ message: String, _ code: FailureCode) -> CommandFailure {
        CommandFailure(message, code: code, exitCode: failureExitCode)
    }

    public var description: String { message }
}
