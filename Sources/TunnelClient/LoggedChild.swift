import Glibc
import TunnelIO

/// Why `ChildLauncher.start` could not start a program.
public enum ChildLaunchFailure: Error {
    /// The log file could not be opened; `reason` is the system's.
    case log(path: String, reason: String)
    /// The program could not be started (not found, not executable).
    case program(IOError)
}

/// Starts helper programs on one loop, their output appended to a log file: what a command
/// holds to start a child next to the node (`tunnel dev`'s private sshd) without handling the
/// loop's types itself.
public struct ChildLauncher {
    let loop: EventLoop

    public init(loop: EventLoop) { self.loop = loop }

    /// Starts `arguments` with stdout and stderr appended to `log` (made 0600 when new).
    /// `onExit` runs once the child has ended, with its exit status and the signal that ended it.
    public func start(
        _ arguments: [String], log: String, onExit: @escaping (_ status: Int64, _ signal: Int32) -> Void
    ) throws(ChildLaunchFailure) -> LoggedChild {
        let descriptor = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .log(path: log, reason: String(cString: strerror(errno))) }
        let process: ChildProcess
        do {
            process = try ChildProcess(loop: loop, arguments: arguments) { onExit($0.status, $0.signal) }
        } catch {
            close(descriptor)
            throw .program(error)
        }
        return LoggedChild(process: process, logDescriptor: descriptor)
    }
}

/// A child started by `ChildLauncher`. Loop-confined.
public final class LoggedChild {
    private let process: ChildProcess
    private let logDescriptor: Int32

    init(process: ChildProcess, logDescriptor: Int32) {
        self.process = process
        self.logDescriptor = logDescriptor
        let output = process.output
        // The pipe must be read, or the child would block on it once it is full.
        try? output.startReading { event in
            switch event {
            case .data(let bytes):
                _ = bytes.withUnsafeBytes { write(logDescriptor, $0.baseAddress, $0.count) }
            case .end, .error:
                output.close()
            }
        }
    }

    /// Ends the child (its exit then closes the process handle) and the log file.
    public func stop() {
        process.terminate()
        close(logDescriptor)
    }
}
