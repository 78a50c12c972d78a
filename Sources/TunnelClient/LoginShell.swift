internal import CPseudoTerminal
import Glibc
import Multiplex
import TunnelIO
import TunnelRuntime

/// A user's login shell on a new pseudo-terminal: the one owner of the master side (as
/// `terminal`, read and written on the loop; ptys are pollable) and of the child until it is
/// reaped. Loop-confined.
final class LoginShell {
    let pid: pid_t
    /// The master side. Closing it hangs the terminal up: the shell's session gets SIGHUP.
    let terminal: StreamConnection
    /// The master's descriptor, for the size ioctl; valid while `terminal` is open, which owns it.
    private let masterDescriptor: Int32
    /// Set once the child was reaped; its pid may then belong to someone else.
    private(set) var exitStatus: Int32?

    /// Checks that this process may start `user`'s shell (the user exists; we are root or that
    /// user); the failure is a sentence for the operator or the client's configuration.
    static func check(user: String) throws(Failure) {
        try callReportingSentence { cpty_check_user(user, $0, $1) }
    }

    /// Runs a C call that returns 0, or -1 with a sentence written to the error buffer it gets.
    private static func callReportingSentence(_ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(Failure) {
        var error = [CChar](repeating: 0, count: 512)
        let status = error.withUnsafeMutableBufferPointer { call($0.baseAddress!, $0.count) }
        guard status == 0 else {
            throw Failure(
                TunnelErrorCode.serviceUnreachable, error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
    }

    /// Starts `user`'s login shell with the operator's terminal type and size, running the
    /// operator's command through `-c` when there is one. Watch SIGCHLD
    /// before calling this, so the child's exit cannot go unnoticed.
    init(loop: EventLoop, user: String, parameters: ShellParameters) throws(Failure) {
        var shell = cpty_shell()
        try Self.callReportingSentence {
            cpty_spawn_login_shell(
                user, parameters.term, parameters.command, parameters.columns, parameters.rows, &shell, $0, $1)
        }
        do {
            terminal = try StreamConnection.openPipe(loop: loop, fileDescriptor: shell.master_fd)
        } catch {
            // The descriptor is still ours; without it nobody could use the shell, so end it now.
            Glibc.close(shell.master_fd)
            kill(-shell.pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(shell.pid, &status, 0) < 0 && errno == EINTR {}
            throw Failure(TunnelErrorCode.serviceUnreachable, "cannot use the shell's terminal: \(error)")
        }
        pid = shell.pid
        masterDescriptor = shell.master_fd
    }

    /// Passes the operator's new terminal size on; the shell's foreground job gets SIGWINCH.
    func resize(columns: UInt16, rows: UInt16) -> Int32 {
        guard !terminal.isClosed else { return 0 }
        return cpty_set_window_size(masterDescriptor, columns, rows)
    }

    /// Signals every process group of the shell's session: the shell's own and its jobs', as a
    /// terminal that goes away would reach them. The shell's pid is the session's id, and Linux
    /// reuses no pid that is still a live process's session id, so this holds after the shell
    /// is reaped as long as one of its jobs lives.
    func signalSession(_ number: Int32) {
        var groups = SessionProcesses.groups(inSession: pid)
        if exitStatus == nil { groups.insert(pid) }
        for group in groups { kill(-group, number) }
    }

    /// Reaps the shell if it has ended; true once it has (now or before).
    @discardableResult
    func reap() -> Bool {
        guard exitStatus == nil else { return true }
        var status: Int32 = 0
        switch cpty_reap(pid, &status) {
        case 1:
            exitStatus = status
        case 0:
            break
        default:
            // ECHILD: someone else reaped it (a waitpid(-1) elsewhere in the process); its
            // status is lost, and 255 says so rather than claim success.
            exitStatus = 255
        }
        return exitStatus != nil
    }
}
