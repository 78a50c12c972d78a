internal import CLibUV

extension EventLoop {
    /// The single cross-thread door into a loop: any thread may queue closures,
    /// which then run on the loop thread in the order they were queued.
    ///
    /// Wraps a `uv_async_t`. libuv coalesces wake-ups, so one callback drains
    /// everything queued so far.
    ///
    /// `@unchecked Sendable` is sound because the only mutable state is behind
    /// the `state` lock, and the async handle is touched off-loop only by
    /// `uv_async_send` (documented thread-safe), called under that mutex and
    /// only before close was requested; the handle is closed and freed on the
    /// loop thread after that point.
    public final class Waker: @unchecked Sendable, HandleOwner {
        private struct State {
            var queue: [@Sendable () -> Void] = []
            var closeRequested = false
        }

        private let handle: UnsafeMutablePointer<uv_async_t>
        private let state = Lock(State())
        /// Keeps the loop alive while the handle exists; touched on the loop thread only.
        private let loop: EventLoop

        /// Creates the door. Call on the loop thread; the waker keeps the loop
        /// running (it is an active handle) until `close()`.
        public init(loop: EventLoop) throws(IOError) {
            let handle = UnsafeMutablePointer<uv_async_t>.allocate(capacity: 1)
            let status = uv_async_init(loop.loop, handle) { handle in
                owner(handle?.pointee.data, as: Waker.self).drain()
            }
            if status != 0 {
                handle.deallocate()
                throw IOError(code: status, operation: "create waker")
            }
            self.handle = handle
            self.loop = loop
            handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        }

        /// Queues `work` to run on the loop thread. Any thread. Returns false,
        /// dropping `work`, once `close()` has been called.
        @discardableResult
        public func execute(_ work: @escaping @Sendable () -> Void) -> Bool {
            state.withLock { state in
                guard !state.closeRequested else { return false }
                state.queue.append(work)
                uv_async_send(handle)
                return true
            }
        }

        /// Any thread. Work already queued still runs; then the handle closes on
        /// the loop thread, after which the waker no longer keeps the loop alive.
        public func close() {
            state.withLock { state in
                guard !state.closeRequested else { return }
                state.closeRequested = true
                uv_async_send(handle)
            }
        }

        /// Loop thread: runs queued work outside the lock, so work may queue more.
        private func drain() {
            let (work, closing) = state.withLock { state in
                let work = state.queue
                state.queue.removeAll()
                return (work, state.closeRequested)
            }
            for item in work { item() }
            // `execute` refuses work once close is requested, and the request was
            // read under the same lock that took the queue, so nothing is left behind.
            guard closing else { return }
            beginClose(tunnel_uv_async_as_handle(handle))
        }

        func handleDidClose() {
            handle.deallocate()
        }
    }
}
