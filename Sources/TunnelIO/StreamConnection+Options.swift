internal import CLibUV
internal import Glibc

/// Socket options and addresses: thin wrappers over libuv and the kernel's TCP knobs.
extension StreamConnection {
    /// Disables (true) or re-enables Nagle's algorithm.
    public func setNoDelay(_ enabled: Bool) throws(IOError) {
        try requireOpen("set TCP_NODELAY")
        try check(uv_tcp_nodelay(handle, enabled ? 1 : 0), "set TCP_NODELAY", address: peerDescription)
    }

    /// Enables TCP keepalive: the first probe after `idleSeconds` of silence,
    /// then one every `intervalSeconds`, dropping the link after `probeCount`
    /// unanswered. Call once connected (interval and count need the socket).
    public func setKeepAlive(idleSeconds: UInt32, intervalSeconds: UInt32, probeCount: UInt32) throws(IOError) {
        try requireOpen("set TCP keepalive")
        try check(uv_tcp_keepalive(handle, 1, idleSeconds), "set TCP keepalive", address: peerDescription)
        try check(
            tunnel_uv_tcp_set_keepalive_probes(handle, Int32(intervalSeconds), Int32(probeCount)),
            "set TCP keepalive", address: peerDescription)
    }

    /// Turns TCP keepalive off.
    public func disableKeepAlive() throws(IOError) {
        try requireOpen("set TCP keepalive")
        try check(uv_tcp_keepalive(handle, 0, 0), "set TCP keepalive", address: peerDescription)
    }

    /// Sets TCP_USER_TIMEOUT: the connection fails once sent data stays
    /// unacknowledged this long (0 restores the kernel default). Call once connected.
    public func setUserTimeout(milliseconds: UInt32) throws(IOError) {
        try requireOpen("set TCP_USER_TIMEOUT")
        try check(
            tunnel_uv_tcp_set_user_timeout(handle, milliseconds), "set TCP_USER_TIMEOUT", address: peerDescription)
    }

    /// Sets TCP_NOTSENT_LOWAT: the kernel holds at most about `bytes` unsent (beyond what is in
    /// flight), so a backlog waits in the write queue above it rather than in the kernel.
    public func setNotSentLowWater(_ bytes: UInt32) throws(IOError) {
        try requireOpen("set TCP_NOTSENT_LOWAT")
        try check(tunnel_uv_tcp_set_notsent_lowat(handle, bytes), "set TCP_NOTSENT_LOWAT", address: peerDescription)
    }

    /// Bytes the kernel holds for this TCP connection that it has not sent yet (SIOCOUTQNSD):
    /// what a byte written now waits behind before it even leaves.
    public func unsentBytes() throws(IOError) -> Int {
        try requireOpen("read SIOCOUTQNSD")
        var bytes: Int32 = 0
        try check(tunnel_uv_tcp_unsent_bytes(handle, &bytes), "read SIOCOUTQNSD", address: peerDescription)
        return Int(bytes)
    }

    /// What the kernel measured of this TCP connection's path.
    public func path() throws(IOError) -> TCPPath {
        try requireOpen("read TCP_INFO")
        var microseconds: UInt32 = 0
        var deliveryRate: UInt64 = 0
        var applicationLimited: Int32 = 0
        try check(
            tunnel_uv_tcp_path(handle, &microseconds, &deliveryRate, &applicationLimited), "read TCP_INFO",
            address: peerDescription)
        return TCPPath(
            roundTrip: .microseconds(microseconds), deliveryRate: Double(deliveryRate),
            applicationLimited: applicationLimited != 0)
    }

    public func localAddress() throws(IOError) -> SocketAddress {
        try requireOpen("getsockname")
        var storage = sockaddr_storage()
        try check(tunnel_uv_tcp_local_address(handle, &storage), "getsockname", address: peerDescription)
        return SocketAddress(storage: storage)
    }

    public func peerAddress() throws(IOError) -> SocketAddress {
        try requireOpen("getpeername")
        var storage = sockaddr_storage()
        try check(tunnel_uv_tcp_peer_address(handle, &storage), "getpeername", address: peerDescription)
        return SocketAddress(storage: storage)
    }

    /// The process at the other end of a Unix domain socket as the kernel recorded it when the
    /// connection was made (SO_PEERCRED): unlike anything the peer sends, it cannot be forged, so
    /// it can decide what a local peer may do. Trust the uid and gid; the pid may have exited (and
    /// been reused) since. Throws for TCP connections and pipes, which carry no credentials.
    public func peerCredentials() throws(IOError) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        let operation = "read peer credentials"
        try requireOpen(operation)
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        let status = tunnel_uv_peer_credentials(stream, &pid, &uid, &gid)
        if status == UV_EAFNOSUPPORT.rawValue || status == UV_ENOTSOCK.rawValue {
            throw IOError(
                code: status, operation: operation, address: peerDescription,
                detail: "only a Unix domain socket connection has peer credentials")
        }
        try check(status, operation, address: peerDescription)
        return (pid, uid, gid)
    }
}

/// The kernel's measurements of one TCP connection's path (TCP_INFO).
public struct TCPPath: Equatable, Sendable {
    /// The smoothed round-trip time.
    public var roundTrip: Duration
    /// Bytes per second delivered to the peer over the most recent samples.
    public var deliveryRate: Double
    /// The sender had nothing more to send while the rate was measured: the path may carry more.
    public var applicationLimited: Bool

    public init(roundTrip: Duration, deliveryRate: Double, applicationLimited: Bool) {
        self.roundTrip = roundTrip
        self.deliveryRate = deliveryRate
        self.applicationLimited = applicationLimited
    }
}
