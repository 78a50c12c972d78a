import Logging
import TunnelAgent
import TunnelGateway

/// The gateway's settings, beside the node's and operator's in `TunnelAgent` (its admission
/// limits are `TunnelGateway` types, which the edge agent does not link).
extension Schemas {
    public static let gateway = SettingsSchema(
        command: "gateway", defaultConfigPath: "/etc/tunnel/gateway.yaml",
        settings: GatewaySettings.declarations.map(\.spec))

    /// Every schema; their `TUNNEL_*` names are the ones that "look like ours".
    public static let all: [SettingsSchema] = [gateway, client, `operator`]
}

/// Typed settings of `tunnel gateway`.
public struct GatewaySettings: Sendable, Equatable {
    public var listen: HostPort
    public var dataDir: String
    public var pkiDir: String
    public var adminSocket: String
    public var policy: String?
    /// The PostgreSQL URL of a cluster's shared store; nil for SQLite in data-dir.
    public var store: String?
    /// This replica's name and address in a cluster; both nil for a lone gateway.
    public var replicaName: String?
    public var advertise: HostPort?
    public var nodeCertificateTTL: Duration
    public var reenrollWindow: Duration = .seconds(30 * 86_400)
    public var drainTimeout: Duration
    public var handshakeTimeout: Duration
    public var keepaliveInterval: Duration
    public var logLevel: Logger.Level
    public var logFormat: LogFormat = .text
    public var admission = AdmissionLimits()
    public var metricsListen: HostPort?
    /// Off by default, as DESIGN's TLS row asks: a node then proves its key in every handshake.
    public var sessionResumption = false
    /// 0 by default: on a machine whose cores are all busy anyway, the hand-overs cost more than
    /// they gave (docs/BENCHMARKS.md, "TLS handshakes on a worker thread").
    public var handshakeThreads = 0
    /// More threads than this would only wait for the loop, whose share of a connect is about
    /// a worker's.
    static let maximumHandshakeThreads = 16
}

extension GatewaySettings: DeclaredSettings {
    public static let declarations: [Setting<GatewaySettings>] =
        [
            Setting(
                "listen", .hostPort, .defaultValue("0.0.0.0:7443"), \.listen,
                help: "Address to accept node and operator connections on", example: "0.0.0.0:7443"),
            Setting(
                "data-dir", .path, .defaultValue("/var/lib/tunnel/gateway"), \.dataDir,
                help: "Directory for the gateway's state: its PKI, the fleet database (fleet.db), the admin socket",
                example: "/var/lib/tunnel/gateway"),
            Setting(
                "pki-dir", .path, .derived(.pathInside(key: "data-dir", component: "pki")), \.pkiDir,
                help: "Directory with the CAs and the gateway certificate; created on first start",
                example: "/var/lib/tunnel/gateway/pki"),
            Setting(
                "admin-socket", .path, .derived(.pathInside(key: "data-dir", component: "admin.sock")), \.adminSocket,
                help: "Unix socket (mode 0600) where root on this host runs admin commands",
                example: "/var/lib/tunnel/gateway/admin.sock"),
            Setting(
                "store", .string, optional: \.store,
                help:
                    "Shared PostgreSQL store of a gateway cluster, a libpq URL without password (default: fleet.db in data-dir)",
                example: "postgres://tunnel@db.example.com/tunnel?sslmode=verify-full"),
            Setting(
                "replica-name", .string, optional: \.replicaName,
                help:
                    "This gateway's name in a cluster, a DNS label unique among the replicas; required (with advertise) on a shared store",
                example: "gw-1"),
            Setting(
                "advertise", .hostPort, optional: \.advertise,
                help:
                    "HOST:PORT where the other replicas of a cluster reach this one; required (with replica-name) on a shared store",
                example: "10.0.0.5:7443"),
            Setting(
                "policy", .path, optional: \.policy,
                help: "Access policy file (roles → services on nodes); without one only role admin may do anything",
                example: "/etc/tunnel/policy.yaml"),
            Setting(
                "node-certificate-ttl", .duration, .defaultValue("24h"), \.nodeCertificateTTL,
                help: "Lifetime of node certificates; nodes renew at two thirds of it", example: "24h"),
            Setting(
                "reenroll-window", .duration, .defaultValue("30d"), \.reenrollWindow,
                help:
                    "How long after its certificate expired a node may re-enroll with it; after that it needs a new join token",
                example: "30d"),
            Setting(
                "drain-timeout", .duration, .defaultValue("30s"), \.drainTimeout,
                help: "How long shutdown waits for open streams", example: "30s"),
            Setting(
                "handshake-timeout", .duration, .defaultValue("10s"), \.handshakeTimeout,
                help: "Time allowed for a TLS handshake", example: "10s"),
            Setting(
                "session-resumption", .bool, .defaultValue("false"), \.sessionResumption,
                help:
                    "Issue nodes TLS 1.3 session tickets, so a fleet resumes after a restart at less CPU; off: every handshake proves the node's key",
                example: "true"),
            Setting(
                "handshake-threads", .integer, .defaultValue("0"), \.handshakeThreads,
                help:
                    "Threads that run TLS handshakes' key exchanges and signatures beside the loop, for a gateway with cores of its own (at most \(GatewaySettings.maximumHandshakeThreads)); 0: all on the loop",
                example: "1"),
            Schemas.metricsListen(\.metricsListen),
            Schemas.keepalive(
                \.keepaliveInterval, interval: GatewayKeepalive.interval, misses: GatewayKeepalive.missLimit),
            Schemas.logLevel(\.logLevel),
            Schemas.logFormat(\.logFormat),
        ] + AdmissionSettings.declarations

    public static var unfilled: GatewaySettings {
        GatewaySettings(
            listen: HostPort(host: "", port: 0), dataDir: "", pkiDir: "", adminSocket: "", nodeCertificateTTL: .zero,
            drainTimeout: .zero, handshakeTimeout: .zero, keepaliveInterval: .zero, logLevel: .info)
    }
}
