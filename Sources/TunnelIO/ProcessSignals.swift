internal import Glibc

extension Signal {
    /// The controlling terminal changed size (`tunnel shell` passes it on to the node).
    public static let windowChange = Signal(number: SIGWINCH)
    /// A child process ended or stopped; whoever started it reaps it with `waitpid`.
    public static let childExited = Signal(number: SIGCHLD)
}
