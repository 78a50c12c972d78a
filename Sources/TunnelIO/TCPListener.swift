internal import CLibUV

/// A listening TCP socket (`uv_tcp_t`) that hands each accepted peer to
/// `onAccept` as a new, open `StreamConnection` which the handler then owns.
public final class TCPListener: HandleOwner {
    public let loop: EventLoop
    /// The bound address, with the real port when port 0 was requested.
    public private(set) var localAddress: SocketAddress
    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private let readBufferSize: Int
    private var callbacks: ListenerCallbacks
    /// How many connections one loop turn takes from the kernel's queue; nil takes all that
    /// wait, as libuv does.
    private var budget: AcceptBudget?
    /// Starts each turn's budget, and takes a connection left over from the last turn.
    private var turnStart: LoopTurnStart?
    /// A connection the budget left for the next turn. libuv holds it (accepted from the kernel,
    /// no handle yet) and stops watching the queue until `uv_accept` takes it.
    private var deferred = false

    /// Binds and listens at once, so bind errors surface here: libuv defers
    /// EADDRINUSE from `uv_tcp_bind` to `uv_listen`.
    ///
    /// - Parameters:
    ///   - ipv6Only: for `::`, refuse IPv4-mapped peers instead of serving both families.
    ///   - readBufferSize: the most bytes one read of an accepted connection hands over.
    ///   - acceptBudget: accepts per loop turn; the rest stay queued in the kernel until the
    ///     next turn, so a burst of new connections cannot take a whole turn. Nil: no limit.
    ///   - onAccept: called per peer; an error means one accept failed, the
    ///     listener keeps listening.
    public init(
        loop: EventLoop,
        address: SocketAddress,
        backlog: Int32 = 511,
        ipv6Only: Bool = false,
        readBufferSize: Int = StreamConnection.defaultReadBufferSize,
        acceptBudget: AcceptBudget? = nil,
        onAccept: @escaping (Result<StreamConnection, IOError>) -> Void
    ) throws(IOError) {
        let handle = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        // uv_tcp_init without flags cannot fail: the socket is created by bind.
        uv_tcp_init(loop.loop, handle)
        self.handle = handle
        self.loop = loop
        self.localAddress = address
        self.readBufferSize = readBufferSize
        callbacks = ListenerCallbacks(onAccept: onAccept)
        budget = acceptBudget
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        if acceptBudget != nil {
            turnStart = LoopTurnStart(loop: loop) { [unowned self] in beginTurn() }
        }
        do {
            var storage = address.storage
            try check(tunnel_uv_tcp_bind(handle, &storage, ipv6Only ? 1 : 0), "bind", address: address.description)
            let status = uv_listen(tunnel_uv_tcp_as_stream(handle), backlog) { server, status in
                owner(server?.pointee.data, as: TCPListener.self).didReceiveConnection(status: status)
            }
            try check(status, "listen", address: address.description)
            var bound = sockaddr_storage()
            try check(tunnel_uv_tcp_local_address(handle, &bound), "getsockname", address: address.description)
            localAddress = SocketAddress(storage: bound)
        } catch {
            close()
            throw error
        }
    }

    /// Listens on a numeric IP, for example `("::1", 0)`.
    public convenience init(
        loop: EventLoop,
        host: String,
        port: UInt16,
        backlog: Int32 = 511,
        onAccept: @escaping (Result<StreamConnection, IOError>) -> Void
    ) throws(IOError) {
        try self.init(loop: loop, address: SocketAddress(ip: host, port: port), backlog: backlog, onAccept: onAccept)
    }

    private func didReceiveConnection(status: Int32) {
        guard callbacks.acceptHandler != nil else { return }
        if status == 0, budget?.mayAccept(now: EventLoop.monotonicNanoseconds) == false {
            // Returning without uv_accept leaves the connection to libuv, which stops reading
            // the queue until it is taken (`beginTurn`).
            deferred = true
            return
        }
        accept(status: status)
    }

    /// A new loop turn: a new budget, whose first accept is the connection left from the last.
    private func beginTurn() {
        budget?.newTurn()
        guard deferred, callbacks.acceptHandler != nil else { return }
        deferred = false
        _ = budget?.mayAccept(now: EventLoop.monotonicNanoseconds)
        accept(status: 0)
    }

    private func accept(status: Int32) {
        guard let onAccept = callbacks.acceptHandler else { return }
        onAccept(
            StreamConnection.accept(
                from: tunnel_uv_tcp_as_stream(handle), status: status, kind: .tcp, loop: loop,
                readBufferSize: readBufferSize, listener: localAddress.description))
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { callbacks.state != .open }

    /// Stops listening; connections already accepted stay open. Idempotent.
    public func close(_ onClosed: (() -> Void)? = nil) {
        guard callbacks.close(then: onClosed) else { return }
        turnStart?.close()
        turnStart = nil
        beginClose(tunnel_uv_tcp_as_handle(handle))
    }

    func handleDidClose() {
        handle.deallocate()
        callbacks.closed()?()
    }
}

@available(*, unavailable, message: "TCPListener is confined to its loop's thread")
extension TCPListener: Sendable {}
