import Multiplex

/// A node's keepalive: a PING every 30 s, and the gateway declared gone after 60 s without a
/// frame from it (two intervals). The protocol's default is 15 s × 3 = 45 s; a node pings less
/// often because an idle fleet's pings are nearly all a gateway does at rest (about 48 µs of its
/// CPU each, so 10,000 nodes at 15 s cost it 3.2 % of a core) and what a node on a metered
/// cellular link pays for. 30 s of silence is still far below the idle timeout of NAT and
/// firewall state for established TCP (hours by RFC 5382, minutes on the shortest middleboxes),
/// and a dead gateway or a silently dropped path is found within a minute.
public enum NodeKeepalive {
    public static let interval: Duration = .seconds(30)
    public static let missLimit = 2

    /// The protocol's session defaults with the node's keepalive.
    public static var session: SessionConfiguration {
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = interval
        configuration.keepaliveMissLimit = missLimit
        return configuration
    }
}
