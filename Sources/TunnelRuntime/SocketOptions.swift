import Logging
import TunnelIO

/// Sets what every tunnel TCP connection needs: no Nagle delay (a new stream must be usable in
/// well under a millisecond, and keystrokes must not wait), TCP keepalive, and
/// TCP_USER_TIMEOUT, so the kernel itself gives up on a half-open link about when the
/// multiplexer's own keepalive would.
public func configureKeepalive(_ socket: StreamConnection, keepaliveInterval: Duration, logger: Logger) {
    let seconds = UInt32(max(1, keepaliveInterval.components.seconds))
    do {
        try socket.setNoDelay(true)
        try socket.setKeepAlive(idleSeconds: seconds, intervalSeconds: seconds, probeCount: 3)
        try socket.setUserTimeout(milliseconds: seconds * 3 * 1000)
    } catch {
        logger.warning("cannot set socket options", metadata: ["error": "\(error)"])
    }
}
