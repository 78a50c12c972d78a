import Multiplex
import TunnelRuntime

/// Stands in for a relay's operator end while the stream's open record is being synced: the
/// node's stream is already open (the node dials its service meanwhile), but nothing the
/// operator sent moves on before the record is on disk. Bytes wait here unconsumed, so the
/// stream's window bounds them; a finish or reset waits too. `open` hands everything to the
/// relay in order and steps aside. Loop-confined.
final class StreamOpenGate: StreamHandler {
    /// Makes a handler the one the stream's events go to (`MuxConnection.attach`).
    private let attach: (any StreamHandler) -> Void
    private var target: (any StreamHandler)?
    private var held: [ArraySlice<UInt8>] = []
    private var finished = false
    private var reset: Failure?
    private var whenOpen: [() -> Void] = []

    init(attach: @escaping (any StreamHandler) -> Void) {
        self.attach = attach
    }

    var isOpen: Bool { target != nil }

    /// Runs `body` now if the gate is open, else right after it opens.
    func afterOpening(_ body: @escaping () -> Void) {
        if isOpen { body() } else { whenOpen.append(body) }
    }

    /// Takes the stream's events until `open`.
    func hold() {
        attach(self)
    }

    /// The record is durable: `handler` gets the stream and everything held for it.
    func open(into handler: any StreamHandler) {
        guard target == nil else { return }
        target = handler
        if reset == nil { attach(handler) }
        for body in whenOpen { body() }
        whenOpen = []
        for bytes in held { handler.streamReceived(bytes) }
        held = []
        if finished { handler.streamFinished() }
        if let reset { handler.streamReset(reset) }
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) {
        if let target { target.streamReceived(bytes) } else { held.append(bytes) }
    }

    func streamFinished() {
        if let target { target.streamFinished() } else { finished = true }
    }

    func streamReset(_ failure: Failure) {
        if let target { target.streamReset(failure) } else { reset = failure }
    }

    func streamWritable() {
        target?.streamWritable()
    }
}
