internal import CLibUV
internal import Glibc

/// A child process started with `uv_spawn`, whose standard output and standard error both go
/// into one pipe that the caller reads as a `StreamConnection`; its standard input is /dev/null.
///
/// libuv reaps the child (it watches SIGCHLD for the loop and waits only for its own children,
/// by pid), so this coexists with other code that reaps its own children by pid. The process
/// handle stays open, and keeps the loop running, until the child has exited: `terminate` asks
/// it to end early. Loop-confined.
public final class ChildProcess: HandleOwner {
    /// How the child ended.
    public struct Termination: Sendable, Equatable {
        /// The exit status, when it exited by itself.
        public let status: Int64
        /// The signal that ended it, or 0.
        public let signal: Int32
    }

    public let loop: EventLoop
    /// The child's pid; valid until `onExit` ran (then the pid may belong to another process).
    public private(set) var pid: Int32 = 0
    /// The read end of the child's stdout and stderr. The caller reads it and closes it.
    public let output: StreamConnection
    private let handle: UnsafeMutablePointer<uv_process_t>
    private var state = HandleState.open
    private var exited = false
    private var onExit: ((Termination) -> Void)?

    /// Starts `arguments[0]`, looked up on PATH as `execvp` does, with `arguments`.
    /// `onExit` runs once, when the child has ended; by then it has been reaped.
    /// Throws, without calling `onExit`, when the program cannot be started (ENOENT, EACCES).
    public init(loop: EventLoop, arguments: [String], onExit: @escaping (Termination) -> Void) throws(IOError) {
        precondition(!arguments.isEmpty, "a child process needs a program")
        // The pipe is made close-on-exec, so only the child's dup2'd copies survive its exec
        // and no other child started meanwhile inherits it (that would delay our end of file).
        var descriptors: [uv_file] = [-1, -1]
        try check(uv_pipe(&descriptors, 0, 0), "make a pipe for", address: arguments[0])
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        // The child has its own copy once spawned (or never will): ours would keep the pipe from ending.
        defer { Glibc.close(writeEnd) }
        do {
            output = try StreamConnection.openPipe(loop: loop, fileDescriptor: readEnd)
        } catch {
            Glibc.close(readEnd)
            throw error
        }
        self.loop = loop
        self.onExit = onExit
        handle = .allocate(capacity: 1)
        handle.initialize(to: uv_process_t())
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()

        var stdio = [uv_stdio_container_t](repeating: uv_stdio_container_t(), count: 3)
        stdio[0].flags = UV_IGNORE
        for index in 1...2 {
            stdio[index].flags = UV_INHERIT_FD
            stdio[index].data.fd = writeEnd
        }
        var cArguments = arguments.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        let status = stdio.withUnsafeMutableBufferPointer { stdio in
            cArguments.withUnsafeMutableBufferPointer { cArguments in
                var options = uv_process_options_t()
                options.exit_cb = { handle, status, signal in
                    owner(handle?.pointee.data, as: ChildProcess.self).didExit(
                        Termination(status: status, signal: signal))
                }
                options.file = UnsafePointer(cArguments[0])
                options.args = cArguments.baseAddress
                options.stdio_count = Int32(stdio.count)
                options.stdio = stdio.baseAddress
                return uv_spawn(loop.loop, handle, &options)
            }
        }
        guard status == 0 else {
            output.close()
            // libuv initialised the handle although the spawn failed: it must still be closed.
            self.onExit = nil
            state = .closing
            beginClose(processHandle)
            throw IOError(code: status, operation: "start", address: arguments[0])
        }
        pid = uv_process_get_pid(handle)
    }

    /// Sends SIGTERM to the child unless it has already exited. Its exit is reported as usual.
    public func terminate() {
        guard state == .open, !exited else { return }
        uv_process_kill(handle, SIGTERM)
    }

    private func didExit(_ termination: Termination) {
        exited = true
        let onExit = self.onExit
        self.onExit = nil
        if state == .open {
            state = .closing
            beginClose(processHandle)
        }
        onExit?(termination)
    }

    /// `uv_process_t` begins with the `uv_handle_t` fields (libuv's C "inheritance"); tunnel_uv.h
    /// has no cast shim for process handles, so the cast is spelled out here.
    private var processHandle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)
    }

    func handleDidClose() {
        state = .closed
        handle.deinitialize(count: 1)
        handle.deallocate()
        onExit = nil
    }
}

@available(*, unavailable, message: "ChildProcess is confined to its loop's thread")
extension ChildProcess: Sendable {}
