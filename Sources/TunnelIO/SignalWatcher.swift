internal import CLibUV
internal import Glibc

/// A signal the process reacts to, delivered on the loop by `SignalWatcher`.
public struct Signal: Hashable, Sendable, CustomStringConvertible {
    public let number: Int32

    public init(number: Int32) {
        self.number = number
    }

    /// Stop gracefully (systemd, k3s).
    public static let terminate = Signal(number: SIGTERM)
    /// Stop gracefully (Ctrl-C).
    public static let interrupt = Signal(number: SIGINT)
    /// Reload configuration and certificates.
    public static let hangup = Signal(number: SIGHUP)

    public var description: String {
        switch number {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }
}

/// A `uv_signal_t`: runs a handler on the loop thread when the process gets
/// `signal`. libuv forwards the signal through a pipe, so the handler may do
/// anything, unlike a raw signal handler.
public final class SignalWatcher: HandleOwner {
    public let loop: EventLoop
    public let signal: Signal
    private let handle: UnsafeMutablePointer<uv_signal_t>
    private var state = HandleState.open
    private var onSignal: ((Signal) -> Void)?
    private var onClosed: (() -> Void)?

    public init(loop: EventLoop, signal: Signal, _ handler: @escaping (Signal) -> Void) throws(IOError) {
        let handle = UnsafeMutablePointer<uv_signal_t>.allocate(capacity: 1)
        let status = uv_signal_init(loop.loop, handle)
        if status != 0 {
            handle.deallocate()
            throw IOError(code: status, operation: "watch \(signal)")
        }
        self.handle = handle
        self.loop = loop
        self.signal = signal
        self.onSignal = handler
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        let started = uv_signal_start(
            handle,
            { handle, number in
                let watcher = owner(handle?.pointee.data, as: SignalWatcher.self)
                watcher.onSignal?(Signal(number: number))
            }, signal.number)
        if started != 0 {
            close()
            throw IOError(code: started, operation: "watch \(signal)")
        }
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { state != .open }

    /// Stops watching; the default disposition is restored once no loop
    /// watches the signal any more. `onClosed` runs once libuv released the handle.
    public func close(_ onClosed: (() -> Void)? = nil) {
        guard state == .open else { return }
        state = .closing
        self.onClosed = onClosed
        beginClose(tunnel_uv_signal_as_handle(handle))
    }

    func handleDidClose() {
        state = .closed
        handle.deallocate()
        onSignal = nil
        let onClosed = self.onClosed
        self.onClosed = nil
        onClosed?()
    }
}

@available(*, unavailable, message: "SignalWatcher is confined to its loop's thread")
extension SignalWatcher: Sendable {}
