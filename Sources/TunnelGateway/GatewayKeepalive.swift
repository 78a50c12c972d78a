/// The gateway's keepalive: 20 s × 3 misses. It answers the pings its peers send and pings an idle
/// connection itself only after `interval × (misses − 1)` = 40 s of silence (PROTOCOL.md §7.1),
/// which must be longer than a node's own interval (`NodeKeepalive`, 30 s), or it would ping
/// every idle node just before that node's ping arrives. A node or operator that went silent is
/// declared dead after 60 s, as a node declares a silent gateway.
public enum GatewayKeepalive {
    public static let interval: Duration = .seconds(20)
    public static let missLimit = 3
}
