import Multiplex
import TunnelIO
import TunnelTLS

// A server's handshake steps after its ClientHello, run by a `HandshakeWorker` off the loop.
extension MuxConnection {
    /// Gives the handshake's next step to the worker. The socket stops reading meanwhile, so
    /// what the peer sends next waits in the kernel rather than in a buffer here.
    func handOffHandshake() {
        guard let handshakeWorker else { return }
        socket.stopReading()
        handshakeIsAway = true
        handshakeWorker.advance(tls) { [self] in handshakeCameBack() }
    }

    /// The worker has run a step: its output goes out, and reading resumes. A connection closed
    /// meanwhile (timeout, abort) just lets go of it.
    private func handshakeCameBack() {
        handshakeIsAway = false
        guard phase == .handshaking else { return }
        dispatch {
            do {
                try socket.resumeReading()
            } catch {
                close(Failure(.internalError, "cannot read from \(remoteAddress): \(error)"))
                return
            }
            if handshakeAdvanced(to: tls.handshakeState) { process() }
        }
    }
}
