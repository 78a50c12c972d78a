/// What a listener keeps from its init to the end of its close, the same for TCP and Unix
/// sockets: the accept handler while it is open, and the close callback until libuv has
/// released the handle.
struct ListenerCallbacks {
    private(set) var state = HandleState.open
    private var onAccept: ((Result<StreamConnection, IOError>) -> Void)?
    private var onClosed: (() -> Void)?

    init(onAccept: @escaping (Result<StreamConnection, IOError>) -> Void) {
        self.onAccept = onAccept
    }

    /// The handler for an accepted peer; nil once closing, when a late accept is dropped.
    var acceptHandler: ((Result<StreamConnection, IOError>) -> Void)? { state == .open ? onAccept : nil }

    /// Starts closing; false when the listener was already closing or closed.
    mutating func close(then onClosed: (() -> Void)?) -> Bool {
        guard state == .open else { return false }
        state = .closing
        self.onClosed = onClosed
        return true
    }

    /// libuv released the handle: drops the handler and hands back the close callback to run.
    mutating func closed() -> (() -> Void)? {
        state = .closed
        onAccept = nil
        defer { onClosed = nil }
        return onClosed
    }
}
