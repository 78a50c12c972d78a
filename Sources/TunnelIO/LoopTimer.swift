internal import CLibUV

/// A `uv_timer_t`. Deadlines are measured on the loop clock (`EventLoop.now`),
/// so timers started in the same iteration fire in deadline order.
public final class LoopTimer: HandleOwner {
    public let loop: EventLoop
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var state = HandleState.open
    private var onFire: (() -> Void)?
    private var onClosed: (() -> Void)?

    public init(loop: EventLoop) {
        let handle = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
        // uv_timer_init cannot fail: it only links the handle into the loop.
        uv_timer_init(loop.loop, handle)
        self.handle = handle
        self.loop = loop
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// (Re)starts the timer: `handler` runs after `milliseconds`, then every
    /// `repeatMilliseconds` if that is non-zero. Replaces any earlier handler.
    public func start(
        after milliseconds: UInt64, repeat repeatMilliseconds: UInt64 = 0, _ handler: @escaping () -> Void
    ) {
        precondition(state == .open, "LoopTimer.start after close")
        onFire = handler
        uv_timer_start(
            handle,
            { handle in
                owner(handle?.pointee.data, as: LoopTimer.self).onFire?()
            }, milliseconds, repeatMilliseconds)
    }

    /// Stops the timer; `start` may be called again.
    public func stop() {
        guard state == .open else { return }
        uv_timer_stop(handle)
    }

    /// Whether the timer is started and has not yet fired for the last time.
    public var isActive: Bool {
        state == .open && uv_is_active(tunnel_uv_timer_as_handle(handle)) != 0
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { state != .open }

    /// Closes the timer; `onClosed` runs once libuv has released it. Idempotent.
    public func close(_ onClosed: (() -> Void)? = nil) {
        guard state == .open else { return }
        state = .closing
        self.onClosed = onClosed
        beginClose(tunnel_uv_timer_as_handle(handle))
    }

    func handleDidClose() {
        state = .closed
        handle.deallocate()
        onFire = nil
        let onClosed = self.onClosed
        self.onClosed = nil
        onClosed?()
    }
}

@available(*, unavailable, message: "LoopTimer is confined to its loop's thread")
extension LoopTimer: Sendable {}
