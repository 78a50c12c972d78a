internal import CLibUV

/// One byte stream: a TCP connection (`uv_tcp_t`) made by `connect` or by a `TCPListener`, or a
/// `uv_pipe_t`: a Unix domain socket connection made by `connect(loop:unixPath:...)` or by a
/// `UnixListener`, or an inherited pipe or socket descriptor (e.g. stdin and stdout of a
/// ProxyCommand) opened with `openPipe`. The TCP-only options fail on a pipe with the system's error.
///
/// The connection keeps itself alive while open: whoever created it must
/// `close()` it, which also releases every callback it holds (so callbacks
/// may capture the connection without leaking it past close).
public final class StreamConnection: HandleOwner {
    /// What a read delivers.
    public enum ReadEvent {
        /// Bytes received, in a buffer the loop lends to every read: they are
        /// valid only until the handler returns; copy what you keep.
        case data(UnsafeRawBufferPointer)
        /// The peer shut down its write side. Reading has stopped; writing still works.
        case end
        /// Reading failed and has stopped; close the connection.
        case error(IOError)
    }

    /// The size of the reusable read buffer unless the creator asks otherwise.
    public static let defaultReadBufferSize = 64 * 1024

    /// Which member of the storage union the handle is.
    enum Kind {
        case tcp
        case pipe
    }

    public let loop: EventLoop
    private let storage: UnsafeMutablePointer<tunnel_uv_stream_storage>
    /// The TCP view of the handle; only meaningful (and only used) for TCP connections.
    var handle: UnsafeMutablePointer<uv_tcp_t> { tunnel_uv_storage_tcp(storage) }
    /// The generic view of the handle, right for TCP and pipes alike.
    var anyHandle: UnsafeMutablePointer<uv_handle_t> { tunnel_uv_storage_handle(storage) }
    /// The pipe view of the handle; only meaningful for pipes and Unix sockets.
    private var pipe: UnsafeMutablePointer<uv_pipe_t> { tunnel_uv_storage_pipe(storage) }
    /// Handed to libuv for every read: the loop's shared buffer (`EventLoop.readBuffer`), so an
    /// idle connection holds none. Valid from libuv's allocation callback to its read callback.
    private var readBuffer: UnsafeMutableRawBufferPointer?
    /// The most bytes one read hands over.
    private let readBufferSize: Int
    private var state = HandleState.open
    private var onRead: ((ReadEvent) -> Void)?
    private var onConnect: ((Result<Void, IOError>) -> Void)?
    private var connectTimer: LoopTimer?
    private var onClosed: (() -> Void)?
    /// Remembered for error messages, since getpeername fails once the peer is gone.
    private(set) var peerDescription: String?

    /// Whether `startReading`/`resumeReading` is in effect (false after end or error).
    public private(set) var isReading = false

    /// An initialised handle without a socket yet: connect, accept or `uv_pipe_open` provides it.
    private init(loop: EventLoop, kind: Kind, readBufferSize: Int) {
        precondition(readBufferSize > 0, "read buffer must not be empty")
        storage = .allocate(capacity: 1)
        self.loop = loop
        self.readBufferSize = readBufferSize
        // Neither init can fail without flags or IPC: they only link the handle into the loop.
        switch kind {
        case .tcp: uv_tcp_init(loop.loop, handle)
        case .pipe: uv_pipe_init(loop.loop, pipe, 0)
        }
        anyHandle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Wraps an inherited pipe or socket descriptor (not a regular file: those cannot be polled).
    /// The descriptor is made non-blocking and is closed with the connection.
    public static func openPipe(
        loop: EventLoop, fileDescriptor: Int32, readBufferSize: Int = defaultReadBufferSize
    ) throws(IOError) -> StreamConnection {
        // libuv accepts a regular file here and fails only at the first read; refuse it up front.
        switch uv_guess_handle(fileDescriptor) {
        case UV_NAMED_PIPE, UV_TCP, UV_TTY:
            break
        default:
            throw IOError(
                UV_EINVAL, operation: "open pipe", address: "file descriptor \(fileDescriptor)",
                detail: "it is not a pipe, socket or terminal (a regular file cannot be streamed)")
        }
        let connection = StreamConnection(loop: loop, kind: .pipe, readBufferSize: readBufferSize)
        connection.peerDescription = "file descriptor \(fileDescriptor)"
        let status = uv_pipe_open(connection.pipe, fileDescriptor)
        if status != 0 {
            connection.close()
            throw IOError(code: status, operation: "open pipe", address: connection.peerDescription)
        }
        return connection
    }

    // MARK: Connecting

    /// Starts connecting to `address` and returns the connection at once.
    ///
    /// `onConnect` runs exactly once: with success, or with an `IOError`
    /// naming the address (for example `ECONNREFUSED`, or `ETIMEDOUT` when
    /// `timeoutMilliseconds` passes first). On failure the connection is
    /// already closing and must not be used. Throws, without calling
    /// `onConnect`, if the connect cannot even start. `localAddress` binds the
    /// socket's own end first (a fleet simulator speaks from many loopback addresses).
    public static func connect(
        loop: EventLoop,
        to address: SocketAddress,
        from localAddress: SocketAddress? = nil,
        timeoutMilliseconds: UInt64? = nil,
        readBufferSize: Int = defaultReadBufferSize,
        _ onConnect: @escaping (Result<Void, IOError>) -> Void
    ) throws(IOError) -> StreamConnection {
        var storage = address.storage
        var local = localAddress?.storage
        return try connect(
            loop: loop, kind: .tcp, peer: address.description, timeoutMilliseconds: timeoutMilliseconds,
            readBufferSize: readBufferSize, onConnect
        ) { connection, request, callback in
            if local != nil {
                let bound = tunnel_uv_tcp_bind(connection.handle, &local!, 0)
                if bound != 0 { return bound }
            }
            return tunnel_uv_tcp_connect(request, connection.handle, &storage, callback)
        }
    }

    /// Starts connecting to the Unix domain socket at `unixPath` and returns the connection at
    /// once; the same contract as the TCP `connect`, with errors naming the path (for example
    /// `ENOENT` when nothing is there, `EACCES` when the socket's mode keeps us out).
    public static func connect(
        loop: EventLoop,
        unixPath: String,
        timeoutMilliseconds: UInt64,
        readBufferSize: Int = defaultReadBufferSize,
        completion: @escaping (Result<Void, IOError>) -> Void
    ) throws(IOError) -> StreamConnection {
        try connect(
            loop: loop, kind: .pipe, peer: unixPath, timeoutMilliseconds: timeoutMilliseconds,
            readBufferSize: readBufferSize, completion
        ) { connection, request, callback in
            tunnel_uv_pipe_connect(request, connection.pipe, unixPath, callback)
        }
    }

    /// The machinery both `connect`s share: `start` issues the libuv connect for the new
    /// connection's handle, passing on `callback`, and returns its status.
    private static func connect(
        loop: EventLoop,
        kind: Kind,
        peer: String,
        timeoutMilliseconds: UInt64?,
        readBufferSize: Int,
        _ onConnect: @escaping (Result<Void, IOError>) -> Void,
        start: (StreamConnection, UnsafeMutablePointer<uv_connect_t>, uv_connect_cb) -> Int32
    ) throws(IOError) -> StreamConnection {
        let connection = StreamConnection(loop: loop, kind: kind, readBufferSize: readBufferSize)
        connection.peerDescription = peer
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        let status = start(connection, request) { request, status in
            let connection = owner(request!.pointee.handle.pointee.data, as: StreamConnection.self)
            request!.deallocate()
            connection.didConnect(status: status)
        }
        if status != 0 {
            request.deallocate()
            connection.close()
            throw IOError(code: status, operation: "connect", address: peer)
        }
        connection.onConnect = onConnect
        if let timeoutMilliseconds {
            let timer = LoopTimer(loop: loop)
            timer.start(after: timeoutMilliseconds) { [unowned connection] in
                connection.connectTimedOut()
            }
            connection.connectTimer = timer
        }
        return connection
    }

    private func didConnect(status: Int32) {
        connectTimer?.close()
        connectTimer = nil
        // Nil when the timeout already reported; libuv then reports ECANCELED here.
        guard let onConnect else { return }
        self.onConnect = nil
        if status == 0 {
            onConnect(.success(()))
        } else {
            close()
            onConnect(.failure(IOError(code: status, operation: "connect", address: peerDescription)))
        }
    }

    private func connectTimedOut() {
        connectTimer?.close()
        connectTimer = nil
        guard let onConnect else { return }
        self.onConnect = nil
        close()
        onConnect(.failure(IOError(UV_ETIMEDOUT, operation: "connect", address: peerDescription)))
    }

    // MARK: Accepting

    /// The accept path `TCPListener` and `UnixListener` share: turns one connection callback of
    /// the listening `server` (of the same kind) into an open connection or the error to report.
    /// A Unix socket's peer is usually unnamed, so its connections are described by `listener`.
    static func accept(
        from server: UnsafeMutablePointer<uv_stream_t>,
        status: Int32,
        kind: Kind,
        loop: EventLoop,
        readBufferSize: Int,
        listener: String
    ) -> Result<StreamConnection, IOError> {
        if status < 0 {
            return .failure(IOError(code: status, operation: "accept", address: listener))
        }
        let connection = StreamConnection(loop: loop, kind: kind, readBufferSize: readBufferSize)
        let accepted = uv_accept(server, connection.stream)
        if accepted != 0 {
            connection.close()
            return .failure(IOError(code: accepted, operation: "accept", address: listener))
        }
        switch kind {
        case .tcp: connection.peerDescription = try? connection.peerAddress().description
        case .pipe: connection.peerDescription = listener
        }
        return .success(connection)
    }

    var stream: UnsafeMutablePointer<uv_stream_t> { tunnel_uv_storage_stream(storage) }

    // MARK: Reading

    /// Starts reading; `handler` receives every read until `stopReading()`,
    /// end, error or close. A later `resumeReading()` reuses the handler.
    public func startReading(_ handler: @escaping (ReadEvent) -> Void) throws(IOError) {
        onRead = handler
        try resumeReading()
    }

    /// Resumes reading after `stopReading()`, with the handler given to `startReading`.
    public func resumeReading() throws(IOError) {
        guard state == .open else {
            throw IOError(UV_EBADF, operation: "read", address: peerDescription)
        }
        precondition(onRead != nil, "resumeReading before startReading")
        guard !isReading else { return }
        let status = uv_read_start(
            stream,
            { handle, _, buffer in
                let connection = owner(handle?.pointee.data, as: StreamConnection.self)
                let readBuffer = connection.readBufferForReading()
                buffer!.pointee = tunnel_uv_buf(readBuffer.baseAddress, readBuffer.count)
            },
            { stream, count, _ in
                owner(stream?.pointee.data, as: StreamConnection.self).didRead(count: count)
            })
        try check(status, "read", address: peerDescription)
        isReading = true
    }

    /// Stops reading, for backpressure: the kernel buffers then fill and the
    /// peer's writes stall. Safe to call from inside the read handler.
    public func stopReading() {
        guard state == .open, isReading else { return }
        uv_read_stop(stream)
        isReading = false
    }

    private func readBufferForReading() -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer(
            rebasing: loop.readBuffer(ofAtLeast: readBufferSize)[..<readBufferSize])
        readBuffer = buffer
        return buffer
    }

    private func didRead(count: Int) {
        guard let onRead else { return }
        if count > 0, let readBuffer {
            onRead(.data(UnsafeRawBufferPointer(rebasing: readBuffer[..<count])))
        } else if count == Int(UV_EOF.rawValue) {
            // libuv has already stopped reading.
            isReading = false
            onRead(.end)
        } else if count < 0 {
            isReading = false
            onRead(.error(IOError(code: Int32(count), operation: "read", address: peerDescription)))
        }
        // count == 0 is libuv's EAGAIN: nothing was read and nothing ended.
    }

    // MARK: Writing

    /// Queues a copy of `bytes`; the caller's memory is free again on return.
    ///
    /// `completion` runs exactly once unless this throws: with nil once the
    /// kernel took every byte, or with an error (ECANCELED if closed first).
    public func write(_ bytes: UnsafeRawBufferPointer, completion: ((IOError?) -> Void)? = nil) throws(IOError) {
        try write(
            capacity: bytes.count,
            filling: { payload in
                payload.copyMemory(from: bytes)
                return bytes.count
            }, completion: completion)
    }

    /// Hands `bytes` to the kernel at once, as many as it takes, when nothing is queued ahead of
    /// them, and queues a copy of the rest (of all of them when writes are queued); the caller's
    /// memory is free again on return. Returns how many went at once. `completion` runs only if
    /// something was queued, as for `write(_:completion:)`, once the kernel took the rest.
    ///
    /// What the kernel takes at once costs no write request, no copy, no completion turn and no
    /// re-arming of the socket's poll (libuv re-arms it after every queued write: an epoll_ctl a
    /// message). A failing send queues everything, and the queued write reports the error.
    /// `endsSegment` (TCP): the bytes end the kernel's segment (MSG_EOR), so the next write is
    /// taken only while the kernel's unsent bytes are under TCP_NOTSENT_LOWAT rather than
    /// appended to a 64 KiB segment past it. `alwaysCompletes`: `completion` runs from the loop
    /// even when the kernel took every byte at once (an empty write request carries it), for an
    /// owner that resumes its work from there.
    @discardableResult
    public func send(
        _ bytes: UnsafeRawBufferPointer, endsSegment: Bool = false, alwaysCompletes: Bool = false,
        completion: ((IOError?) -> Void)? = nil
    ) throws(IOError) -> Int {
        guard state == .open else {
            throw IOError(UV_EBADF, operation: "write", address: peerDescription)
        }
        let sent =
            bytes.isEmpty ? 0 : tunnel_uv_try_send(stream, bytes.baseAddress, bytes.count, endsSegment ? 1 : 0)
        let rest = UnsafeRawBufferPointer(rebasing: bytes[sent...])
        if !rest.isEmpty || alwaysCompletes {
            try queue(capacity: rest.count, evenIfEmpty: true, completion: completion) { payload in
                payload.copyMemory(from: rest)
                return rest.count
            }
        }
        return sent
    }

    /// Queues bytes that `fill` writes straight into the pinned write buffer (up to `capacity`;
    /// it returns how many it wrote), so a producer needs no scratch copy of its own.
    /// Same completion contract as `write(_:completion:)`; nothing is queued if `fill` writes 0.
    public func write(
        capacity: Int, filling fill: (UnsafeMutableRawBufferPointer) -> Int, completion: ((IOError?) -> Void)? = nil
    ) throws(IOError) {
        try queue(capacity: capacity, evenIfEmpty: false, completion: completion, filling: fill)
    }

    /// `write(capacity:filling:completion:)`; `evenIfEmpty` queues a request when `fill` wrote
    /// nothing too, which libuv completes at once, from the loop.
    private func queue(
        capacity: Int, evenIfEmpty: Bool, completion: ((IOError?) -> Void)?,
        filling fill: (UnsafeMutableRawBufferPointer) -> Int
    ) throws(IOError) {
        guard state == .open else {
            throw IOError(UV_EBADF, operation: "write", address: peerDescription)
        }
        // One allocation holds the request and the bytes, which stay pinned
        // until the write callback frees them together.
        let headerSize = MemoryLayout<uv_write_t>.stride
        let block = UnsafeMutableRawPointer.allocate(
            byteCount: headerSize + capacity, alignment: MemoryLayout<uv_write_t>.alignment)
        let request = block.bindMemory(to: uv_write_t.self, capacity: 1)
        let payload = block + headerSize
        let count = min(capacity, fill(UnsafeMutableRawBufferPointer(start: payload, count: capacity)))
        guard count > 0 || evenIfEmpty else {
            block.deallocate()
            completion?(nil)
            return
        }
        request.pointee.data = completion.map { Unmanaged.passRetained(WriteCompletion($0)).toOpaque() }
        var buffer = tunnel_uv_buf(payload, count)
        let status = uv_write(request, stream, &buffer, 1) { request, status in
            let completion = request!.pointee.data.map {
                Unmanaged<WriteCompletion>.fromOpaque($0).takeRetainedValue()
            }
            let connection = owner(request!.pointee.handle.pointee.data, as: StreamConnection.self)
            UnsafeMutableRawPointer(request!).deallocate()
            completion?.run(
                status == 0 ? nil : IOError(code: status, operation: "write", address: connection.peerDescription))
        }
        if status != 0 {
            if let data = request.pointee.data { Unmanaged<WriteCompletion>.fromOpaque(data).release() }
            block.deallocate()
            throw IOError(code: status, operation: "write", address: peerDescription)
        }
    }

    /// Queues a copy of `bytes`; see `write(_:completion:)` for the completion contract.
    public func write(_ bytes: [UInt8], completion: ((IOError?) -> Void)? = nil) throws(IOError) {
        try write(bytes[...], completion: completion)
    }

    /// Queues a copy of `bytes`; see `write(_:completion:)` for the completion contract.
    public func write(_ bytes: ArraySlice<UInt8>, completion: ((IOError?) -> Void)? = nil) throws(IOError) {
        // withUnsafeBytes only rethrows untyped errors, so carry ours out in a Result.
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(IOError) in try write(raw, completion: completion) }
        }
        try result.get()
    }

    /// Bytes queued in libuv that the kernel has not yet accepted: the
    /// backpressure signal. Writers should stop producing above their own limit.
    public var writeQueueSize: Int {
        state == .open ? uv_stream_get_write_queue_size(stream) : 0
    }

    /// Half-closes: sends FIN after every queued write, while reading goes on.
    /// `completion` runs exactly once unless this throws.
    public func shutdown(_ completion: ((IOError?) -> Void)? = nil) throws(IOError) {
        guard state == .open else {
            throw IOError(UV_EBADF, operation: "shutdown", address: peerDescription)
        }
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        request.pointee.data = completion.map { Unmanaged.passRetained(WriteCompletion($0)).toOpaque() }
        let status = uv_shutdown(request, stream) { request, status in
            let completion = request!.pointee.data.map {
                Unmanaged<WriteCompletion>.fromOpaque($0).takeRetainedValue()
            }
            let connection = owner(request!.pointee.handle.pointee.data, as: StreamConnection.self)
            request!.deallocate()
            completion?.run(
                status == 0 ? nil : IOError(code: status, operation: "shutdown", address: connection.peerDescription))
        }
        if status != 0 {
            if let data = request.pointee.data { Unmanaged<WriteCompletion>.fromOpaque(data).release() }
            request.deallocate()
            throw IOError(code: status, operation: "shutdown", address: peerDescription)
        }
    }

    func requireOpen(_ operation: String) throws(IOError) {
        guard state == .open else { throw IOError(UV_EBADF, operation: operation, address: peerDescription) }
    }

    // MARK: Closing

    /// Whether `close()` has been called (or a failed connect closed it).
    public var isClosed: Bool { state != .open }

    /// Closes the connection. Pending writes and shutdown complete with
    /// ECANCELED, a pending connect reports failure, then `onClosed` runs and
    /// every handler is released. Idempotent.
    public func close(_ onClosed: (() -> Void)? = nil) {
        guard state == .open else { return }
        state = .closing
        isReading = false
        self.onClosed = onClosed
        connectTimer?.close()
        connectTimer = nil
        beginClose(anyHandle)
    }

    func handleDidClose() {
        state = .closed
        storage.deallocate()
        readBuffer = nil
        onRead = nil
        onConnect = nil
        let onClosed = self.onClosed
        self.onClosed = nil
        onClosed?()
    }
}

@available(*, unavailable, message: "StreamConnection is confined to its loop's thread")
extension StreamConnection: Sendable {}

/// Boxes a write or shutdown completion so a request's `data` slot can hold it.
private final class WriteCompletion {
    let run: (IOError?) -> Void
    init(_ run: @escaping (IOError?) -> Void) { self.run = run }
}
