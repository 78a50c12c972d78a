internal import CLibUV
internal import Glibc

/// A listening Unix domain stream socket (`uv_pipe_t`) at a path in the file system, such as a
/// local admin socket. Hands each accepted peer to `onAccept` as a new, open `StreamConnection`
/// which the handler then owns; `StreamConnection.peerCredentials()` tells who the peer is.
public final class UnixListener: HandleOwner {
    public let loop: EventLoop
    /// The socket file, which exists from `init` until `close()`.
    public let path: String
    private let handle: UnsafeMutablePointer<uv_pipe_t>
    private let readBufferSize: Int
    /// Whether this listener created the socket file, and so must remove it.
    private var isBound = false
    private var callbacks: ListenerCallbacks

    /// Creates the socket file at `path` with permissions `mode` and listens on it.
    ///
    /// A socket file nobody listens on is what a process that died without cleaning up leaves
    /// behind; it is removed and replaced. Anything else at `path` is left untouched and the
    /// init throws: `EADDRINUSE` if a listener answers there, `EEXIST` if it is not a socket.
    /// (The check and the bind are two steps: two listeners started at the same instant on
    /// one path are not told apart.)
    ///
    /// - Parameters:
    ///   - mode: permission bits of the socket file; connecting needs write permission on it.
    ///   - readBufferSize: the most bytes one read of an accepted connection hands over.
    ///   - onAccept: called per peer; an error means one accept failed, the listener keeps listening.
    public init(
        loop: EventLoop,
        path: String,
        mode: UInt32 = 0o600,
        backlog: Int32 = 16,
        readBufferSize: Int = StreamConnection.defaultReadBufferSize,
        onAccept: @escaping (Result<StreamConnection, IOError>) -> Void
    ) throws(IOError) {
        let handle = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        // uv_pipe_init without IPC cannot fail: the socket is created by bind.
        uv_pipe_init(loop.loop, handle, 0)
        self.handle = handle
        self.loop = loop
        self.path = path
        self.readBufferSize = readBufferSize
        callbacks = ListenerCallbacks(onAccept: onAccept)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do {
            try Self.removeStaleSocket(at: path)
            try bind(mode: mode)
            let status = uv_listen(tunnel_uv_pipe_as_stream(handle), backlog) { server, status in
                owner(server?.pointee.data, as: UnixListener.self).didReceiveConnection(status: status)
            }
            try check(status, "listen", address: path)
        } catch {
            close()
            throw error
        }
    }

    /// Clears the way for the bind: removes a stale socket file, refuses anything else.
    private static func removeStaleSocket(at path: String) throws(IOError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw IOError(code: -errno, operation: "listen", address: path)
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw IOError(
                UV_EEXIST, operation: "listen", address: path,
                detail: "a file that is not a socket is in the way (it was left untouched)")
        }
        switch tunnel_uv_unix_has_listener(path) {
        case 0:
            if unlink(path) != 0 && errno != ENOENT {
                throw IOError(code: -errno, operation: "remove stale socket", address: path)
            }
        case 1:
            throw IOError(
                UV_EADDRINUSE, operation: "listen", address: path,
                detail: "another process (another gateway?) is already listening on this socket")
        case let status:
            throw IOError(code: status, operation: "listen", address: path)
        }
    }

    /// Creates the socket file no more open than `mode` from its first instant (a chmod after a
    /// plain bind would leave a moment in which anyone the umask lets in could connect), without
    /// narrowing the process-wide umask, which would break a directory another thread creates
    /// meanwhile. The chmod then sets exactly `mode`, bits the umask took included.
    private func bind(mode: UInt32) throws(IOError) {
        try check(tunnel_uv_pipe_bind_mode(handle, path, mode_t(mode)), "bind", address: path)
        isBound = true
        if chmod(path, mode) != 0 {
            throw IOError(code: -errno, operation: "chmod", address: path)
        }
    }

    private func didReceiveConnection(status: Int32) {
        guard let onAccept = callbacks.acceptHandler else { return }
        onAccept(
            StreamConnection.accept(
                from: tunnel_uv_pipe_as_stream(handle), status: status, kind: .pipe, loop: loop,
                readBufferSize: readBufferSize, listener: path))
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { callbacks.state != .open }

    /// Stops listening and removes the socket file; connections already accepted stay open.
    /// Idempotent. The file is unlinked here, before the descriptor closes, so it is gone when
    /// this returns and a successor's socket created after that is never removed; a listener
    /// whose init failed before binding removes nothing.
    public func close(_ onClosed: (() -> Void)? = nil) {
        guard callbacks.close(then: onClosed) else { return }
        if isBound { unlink(path) }
        beginClose(tunnel_uv_pipe_as_handle(handle))
    }

    func handleDidClose() {
        handle.deallocate()
        callbacks.closed()?()
    }
}

@available(*, unavailable, message: "UnixListener is confined to its loop's thread")
extension UnixListener: Sendable {}
