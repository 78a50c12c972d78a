internal import CLibUV

/// Runs a closure at the start of every loop turn, right before the loop polls for IO
/// (`uv_prepare_t`). It does not keep the loop alive on its own (the handle is unreferenced),
/// and costs one call per turn.
final class LoopTurnStart: HandleOwner {
    private let handle: UnsafeMutablePointer<uv_prepare_t>
    private var state = HandleState.open
    private var onTurn: (() -> Void)?

    init(loop: EventLoop, _ onTurn: @escaping () -> Void) {
        let handle = UnsafeMutablePointer<uv_prepare_t>.allocate(capacity: 1)
        // uv_prepare_init cannot fail: it only links the handle into the loop.
        uv_prepare_init(loop.loop, handle)
        self.handle = handle
        self.onTurn = onTurn
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        uv_prepare_start(handle) { handle in
            owner(handle?.pointee.data, as: LoopTurnStart.self).onTurn?()
        }
        uv_unref(tunnel_uv_prepare_as_handle(handle))
    }

    /// Stops calling; idempotent.
    func close() {
        guard state == .open else { return }
        state = .closing
        onTurn = nil
        beginClose(tunnel_uv_prepare_as_handle(handle))
    }

    func handleDidClose() {
        state = .closed
        handle.deallocate()
    }
}

@available(*, unavailable, message: "LoopTurnStart is confined to its loop's thread")
extension LoopTurnStart: Sendable {}
