internal import CPseudoTerminal
import Glibc

/// The operator's own terminal, for `tunnel shell`: its size, raw mode, and putting everything
/// back however the command ends.
public enum LocalTerminal {
    /// What a shell gets when the operator has no terminal to measure (a script's pipe).
    public static let defaultSize: (columns: UInt16, rows: UInt16) = (80, 24)

    /// Whether stdin is a terminal, so keys should go through raw.
    public static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 }

    /// The size of the terminal on stdin, else on stdout, else `defaultSize`.
    public static func size() -> (columns: UInt16, rows: UInt16) {
        for descriptor in [STDIN_FILENO, STDOUT_FILENO] {
            var columns: UInt16 = 0
            var rows: UInt16 = 0
            if cpty_window_size(descriptor, &columns, &rows) == 0, columns > 0, rows > 0 { return (columns, rows) }
        }
        return defaultSize
    }

    /// Remembers how stdin and stdout are set up (the event loop makes them non-blocking, which
    /// the shell that started us shares) and, when `raw`, puts the stdin terminal in raw mode.
    /// `restore()` puts back whatever was changed, also after a failure (an errno, returned);
    /// so does the process's exit.
    public static func prepare(raw: Bool) -> Int32? {
        for descriptor in [STDIN_FILENO, STDOUT_FILENO] {
            let status = cpty_local_save(descriptor)
            if status != 0 { return -status }
        }
        let status = raw ? cpty_local_make_raw(STDIN_FILENO) : 0
        return status == 0 ? nil : -status
    }

    public static func restore() {
        cpty_local_restore()
    }
}
