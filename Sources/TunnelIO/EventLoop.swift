internal import CLibUV
internal import Glibc

/// One libuv loop. Create it, and everything attached to it, on the thread that
/// runs it: the loop and every handle owner are confined to that thread and are
/// deliberately not `Sendable`. The only way in from other threads is `Waker`.
public final class EventLoop {
    let loop: UnsafeMutablePointer<uv_loop_t>
    /// The creating thread; `LoopBound` checks access against it.
    let thread: pthread_t
    private var isClosed = false
    /// Where every stream on this loop reads into (`StreamConnection`): a read's bytes are
    /// handed on within its callback and the loop runs one callback at a time, so one buffer
    /// serves all of a gateway's connections instead of 64 KiB each. Made at the first read.
    private var sharedReadBuffer: UnsafeMutableRawBufferPointer?

    /// Creates a private loop (not `uv_default_loop`, so tests can run many).
    public init() throws(IOError) {
        // A write to a socket the peer already closed must come back as EPIPE from libuv, not
        // kill the process; libuv leaves SIGPIPE to its user.
        signal(SIGPIPE, SIG_IGN)
        Heap.configured
        let loop = UnsafeMutablePointer<uv_loop_t>.allocate(capacity: 1)
        let status = uv_loop_init(loop)
        if status != 0 {
            loop.deallocate()
            throw IOError(code: status, operation: "create event loop")
        }
        self.loop = loop
        self.thread = pthread_self()
    }

    /// Every handle owner holds the loop strongly, so this runs only after all
    /// handles finished closing; a loop that still refuses to close is leaked
    /// rather than freed under libuv's feet.
    deinit {
        sharedReadBuffer?.deallocate()
        if !isClosed && uv_loop_close(loop) == 0 {
            loop.deallocate()
        }
    }

    /// The loop's read buffer, at least `count` bytes long; valid until the next call.
    func readBuffer(ofAtLeast count: Int) -> UnsafeMutableRawBufferPointer {
        if let sharedReadBuffer, sharedReadBuffer.count >= count { return sharedReadBuffer }
        sharedReadBuffer?.deallocate()
        let made = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        sharedReadBuffer = made
        return made
    }

    /// Runs until no active handles or requests remain, or `stop()` is called.
    /// Returns true when work remains (the loop was stopped early).
    @discardableResult
    public func run() -> Bool {
        precondition(!isClosed, "EventLoop.run after close")
        return uv_run(loop, UV_RUN_DEFAULT) != 0
    }

    /// Runs one iteration, blocking for IO if there is nothing to do yet.
    /// Returns true when work remains.
    @discardableResult
    public func runOnce() -> Bool {
        precondition(!isClosed, "EventLoop.runOnce after close")
        return uv_run(loop, UV_RUN_ONCE) != 0
    }

    /// Runs one iteration without blocking. Returns true when work remains.
    @discardableResult
    public func runNoWait() -> Bool {
        precondition(!isClosed, "EventLoop.runNoWait after close")
        return uv_run(loop, UV_RUN_NOWAIT) != 0
    }

    /// Makes `run()` return after the current iteration. Loop thread only; from
    /// another thread, `Waker.execute` a closure holding a `LoopBound<EventLoop>`.
    public func stop() {
        uv_stop(loop)
    }

    /// The loop's cached clock in milliseconds (`uv_now`): the time base timers
    /// use. It advances at the start of each iteration, not while callbacks run.
    public var now: UInt64 { uv_now(loop) }

    /// Refreshes `now` from the OS clock, for long-running callbacks.
    public func updateTime() {
        uv_update_time(loop)
    }

    /// A monotonic clock in nanoseconds (`uv_hrtime`), for measuring durations.
    public static var monotonicNanoseconds: UInt64 { uv_hrtime() }

    /// Closes the loop. Succeeds only when every handle has finished closing;
    /// otherwise returns false and the loop stays usable (see `openHandles()`).
    @discardableResult
    public func close() -> Bool {
        if isClosed { return true }
        guard uv_loop_close(loop) == 0 else { return false }
        isClosed = true
        loop.deallocate()
        return true
    }

    /// Describes every handle still registered with the loop, such as
    /// `"tcp"` or `"timer (closing)"`; empty once everything is closed.
    public func openHandles() -> [String] {
        guard !isClosed else { return [] }
        var names: [String] = []
        withUnsafeMutablePointer(to: &names) { names in
            uv_walk(
                loop,
                { handle, context in
                    guard let handle, let context else { return }
                    let names = context.assumingMemoryBound(to: [String].self)
                    var name = String(cString: uv_handle_type_name(uv_handle_get_type(handle)))
                    if uv_is_closing(handle) != 0 { name += " (closing)" }
                    names.pointee.append(name)
                }, names)
        }
        return names
    }

    var isInLoopThread: Bool { pthread_equal(thread, pthread_self()) != 0 }
}

@available(*, unavailable, message: "EventLoop is confined to its thread; use EventLoop.Waker to reach it")
extension EventLoop: Sendable {}
