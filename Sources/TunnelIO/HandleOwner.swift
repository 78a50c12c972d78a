internal import CLibUV

/// Implemented by every owner of a libuv handle so one close callback serves all.
///
/// Contract: the owner stores `Unmanaged.passRetained(self)` in `handle->data`
/// right after `uv_*_init`, which keeps it alive while the handle is open; the
/// close callback releases that retain after `handleDidClose()`.
protocol HandleOwner: AnyObject {
    /// Runs on the loop thread once libuv is done with the handle: the only
    /// place the owner frees the handle memory and drops its callbacks.
    func handleDidClose()
}

/// Lifecycle of a handle owner. The handle memory is valid in `open` and
/// `closing`; libuv calls must only be made while `open`.
enum HandleState {
    case open
    case closing
    case closed
}

/// Asks libuv to close `handle`; the owner hears back through `handleDidClose()`.
func beginClose(_ handle: UnsafeMutablePointer<uv_handle_t>) {
    uv_close(handle) { handle in
        guard let data = handle?.pointee.data else { return }
        let owner = Unmanaged<AnyObject>.fromOpaque(data).takeRetainedValue()
        (owner as! any HandleOwner).handleDidClose()
    }
}

/// Recovers the owner stored in a handle's `data` slot, without touching its retain count.
func owner<Owner: AnyObject>(_ data: UnsafeMutableRawPointer?, as type: Owner.Type) -> Owner {
    Unmanaged<Owner>.fromOpaque(data!).takeUnretainedValue()
}
