import Logging
import Multiplex
import TunnelIO

/// Sets what every tunnel TCP connection needs: no Nagle delay (a new stream must be usable in
/// well under a millisecond, and keystrokes must not wait), TCP keepalive, and
/// TCP_USER_TIMEOUT, so the kernel itself gives up on a half-open link about when the
/// multiplexer's own keepalive would (`session`'s interval × misses).
public func configureKeepalive(_ socket: StreamConnection, session: SessionConfiguration, logger: Logger) {
    let seconds = UInt32(max(1, session.keepaliveInterval.components.seconds))
    let misses = UInt32(max(1, session.keepaliveMissLimit))
    do {
        try socket.setNoDelay(true)
        try socket.setKeepAlive(idleSeconds: seconds, intervalSeconds: seconds, probeCount: misses)
        try socket.setUserTimeout(milliseconds: seconds * misses * 1000)
    } catch {
        logger.warning("cannot set socket options", metadata: ["error": "\(error)"])
    }
}
