import Logging
import TunnelClient
import TunnelGateway

/// The settings schemas of the long-running roles, defined once, as data.
///
/// Each role also has a typed view (`GatewaySettings`, `ClientSettings`, `OperatorSettings`)
/// built from a `ResolvedSettings`, which is what the runtime should consume.
public enum Schemas {
    /// swift-log's level names, in order.
    public static let logLevels = Logger.Level.allCases.map(\.rawValue)

    static func logLevel() -> SettingSpec {
        SettingSpec("log-level", .choice(logLevels), .defaultValue("info"), help: "Least severe log level to print", example: "info")
    }

    static func logFormat() -> SettingSpec {
        SettingSpec("log-format", .choice(LogFormat.allCases.map(\.rawValue)), .defaultValue("text"),
                    help: "Log lines as text (with syslog priorities instead of times under systemd) or JSON", example: "json")
    }

    static func keepalive() -> SettingSpec {
        SettingSpec("keepalive-interval", .duration, .defaultValue("15s"), help: "How often to ping the peer; dead after 3 missed pings", example: "15s")
    }

    static func metricsListen() -> SettingSpec {
        SettingSpec("metrics-listen", .hostPort, .optional, help: "Address for Prometheus /metrics, /healthz and /readyz over plain HTTP; off unless set (keep it on a private network)", example: "127.0.0.1:9443")
    }

    public static let gateway = SettingsSchema(
        command: "gateway",
        defaultConfigPath: "/etc/tunnel/gateway.yaml",
        settings: [
            SettingSpec("listen", .hostPort, .defaultValue("0.0.0.0:7443"), help: "Address to accept node and operator connections on", example: "0.0.0.0:7443"),
            SettingSpec("data-dir", .path, .defaultValue("/var/lib/tunnel/gateway"), help: "Directory for the gateway's state: its PKI, the fleet database (fleet.db), the admin socket", example: "/var/lib/tunnel/gateway"),
            SettingSpec("pki-dir", .path, .derived(.pathInside(key: "data-dir", component: "pki")), help: "Directory with the CAs and the gateway certificate; created on first start", example: "/var/lib/tunnel/gateway/pki"),
            SettingSpec("admin-socket", .path, .derived(.pathInside(key: "data-dir", component: "admin.sock")), help: "Unix socket (mode 0600) where root on this host runs admin commands", example: "/var/lib/tunnel/gateway/admin.sock"),
            SettingSpec("store", .string, .optional, help: "Shared PostgreSQL store of a gateway cluster, a libpq URL without password (default: fleet.db in data-dir)", example: "postgres://tunnel@db.example.com/tunnel?sslmode=verify-full"),
            SettingSpec("replica-name", .string, .optional, help: "This gateway's name in a cluster, a DNS label unique among the replicas; required (with advertise) on a shared store", example: "gw-1"),
            SettingSpec("advertise", .hostPort, .optional, help: "HOST:PORT where the other replicas of a cluster reach this one; required (with replica-name) on a shared store", example: "10.0.0.5:7443"),
            SettingSpec("policy", .path, .optional, help: "Access policy file (roles → services on nodes); without one only role admin may do anything", example: "/etc/tunnel/policy.yaml"),
            SettingSpec("node-certificate-ttl", .duration, .defaultValue("24h"), help: "Lifetime of node certificates; nodes renew at two thirds of it", example: "24h"),
            SettingSpec("reenroll-window", .duration, .defaultValue("30d"), help: "How long after its certificate expired a node may re-enroll with it; after that it needs a new join token", example: "30d"),
            SettingSpec("drain-timeout", .duration, .defaultValue("30s"), help: "How long shutdown waits for open streams", example: "30s"),
            SettingSpec("handshake-timeout", .duration, .defaultValue("10s"), help: "Time allowed for a TLS handshake", example: "10s"),
            metricsListen(),
            keepalive(),
            logLevel(),
            logFormat(),
        ] + AdmissionSettings.specs
    )

    public static let client = SettingsSchema(
        command: "client",
        defaultConfigPath: "/etc/tunnel/client.yaml",
        settings: [
            SettingSpec("gateway", .hostPort, .required, help: "The gateway to dial, HOST:PORT", example: "gateway.example.com:7443"),
            SettingSpec("server-name", .hostName, .derived(.hostOf(key: "gateway")), help: "TLS name the gateway certificate must carry", example: "gateway.example.com"),
            SettingSpec("cert", .path, .defaultValue("/var/lib/tunnel/client/node.crt"), help: "This node's certificate (PEM); written by enrollment and renewal", example: "/var/lib/tunnel/client/node.crt"),
            SettingSpec("key", .path, .defaultValue("/var/lib/tunnel/client/node.key"), help: "This node's private key (PEM, 0600); made on the node at enrollment", example: "/var/lib/tunnel/client/node.key"),
            SettingSpec("gateway-ca", .path, .defaultValue("/var/lib/tunnel/client/gateway-ca.crt"), help: "CA certificate that verifies the gateway; written by enrollment", example: "/var/lib/tunnel/client/gateway-ca.crt"),
            SettingSpec("node-name", .string, .optional, help: "Name to enroll as, when the token does not fix it (default: this host's name)", example: "plant-a-press-3"),
            SettingSpec("services", .map(.services), .defaultValue(""), help: "TCP services the gateway may ask for, NAME=HOST:PORT; nothing else is ever dialed; none is needed when the node offers kubernetes, shell or logs", example: "ssh=127.0.0.1:22,k3s=127.0.0.1:6443", singularFlag: "service"),
            SettingSpec("node-labels", .map(.labels), .defaultValue(""), help: "Labels reported to the gateway, KEY=VALUE (descriptive only: the policy matches the labels of the join token and of `tunnel node label`)", example: "site=berlin,line=3", singularFlag: "node-label"),
            SettingSpec("log-sources", .map(.logSources(rootKey: "log-root")), .defaultValue(""), help: "Logs `tunnel logs` may read, NAME=SOURCE: a file or glob under log-root, or journald:UNIT; no logs service unless set", example: "syslog=/var/log/syslog,app=/var/log/app/*.log,k3s=journald:k3s", singularFlag: "log-source"),
            SettingSpec("log-root", .path, .defaultValue("/var/log"), help: "Directory every file log source must lie under, symlinks resolved", example: "/var/log"),
            SettingSpec("kubernetes", .path, .optional, help: "Kubeconfig of this node's API server (k3s.yaml or a service account's); serves the kubernetes service, kubectl as each operator by impersonation", example: "/etc/tunnel/kubernetes.kubeconfig"),
            SettingSpec("shell-user", .string, .optional, help: "Local user whose login shell the built-in shell service runs (`tunnel shell`); no shell service unless set", example: "maint"),
            metricsListen(),
            keepalive(),
            logLevel(),
            logFormat(),
        ]
    )

    public static let `operator` = SettingsSchema(
        command: "operator",
        defaultConfigPath: "~/.config/tunnel/operator.yaml",
        settings: [
            SettingSpec("gateway", .hostPort, .required, help: "The gateway to dial, HOST:PORT", example: "gateway.example.com:7443"),
            SettingSpec("server-name", .hostName, .derived(.hostOf(key: "gateway")), help: "TLS name the gateway certificate must carry", example: "gateway.example.com"),
            SettingSpec("cert", .path, .defaultValue("~/.config/tunnel/operator.crt"), help: "Your operator certificate (PEM)", example: "~/.config/tunnel/operator.crt"),
            SettingSpec("key", .path, .defaultValue("~/.config/tunnel/operator.key"), help: "Your operator private key (PEM)", example: "~/.config/tunnel/operator.key"),
            SettingSpec("gateway-ca", .path, .defaultValue("~/.config/tunnel/gateway-ca.crt"), help: "CA certificate that verifies the gateway", example: "~/.config/tunnel/gateway-ca.crt"),
            SettingSpec("ssh-known-hosts", .path, .defaultValue("~/.ssh/known_hosts.tunnel"), help: "known_hosts file `tunnel ssh` keeps nodes' host keys in", example: "~/.ssh/known_hosts.tunnel"),
            SettingSpec("ssh-identity", .path, .optional, help: "Private key `tunnel ssh` offers first (ssh -i); unset, ssh's own choice", example: "~/.ssh/id_ed25519"),
            logLevel(),
        ]
    )

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
}

extension GatewaySettings {
    public init(_ s: ResolvedSettings) {
        precondition(s.schema == Schemas.gateway)
        listen = s.hostPort("listen")!
        dataDir = s.path("data-dir")!
        pkiDir = s.path("pki-dir")!
        adminSocket = s.path("admin-socket")!
        policy = s.path("policy")
        store = s.string("store")
        replicaName = s.string("replica-name")
        advertise = s.hostPort("advertise")
        nodeCertificateTTL = s.duration("node-certificate-ttl")!
        reenrollWindow = s.duration("reenroll-window")!
        drainTimeout = s.duration("drain-timeout")!
        handshakeTimeout = s.duration("handshake-timeout")!
        keepaliveInterval = s.duration("keepalive-interval")!
        logLevel = Logger.Level(rawValue: s.string("log-level")!)!
        logFormat = LogFormat(rawValue: s.string("log-format")!)!
        admission = AdmissionSettings.limits(s)
        metricsListen = s.hostPort("metrics-listen")
    }
}

/// Typed settings of `tunnel client`.
public struct ClientSettings: Sendable, Equatable {
    public var gateway: HostPort
    public var serverName: String
    public var cert: String
    public var key: String
    public var gatewayCA: String
    public var nodeName: String?
    /// May be empty when the node offers a built-in service (`offersNothing` says when not).
    public var services: [String: HostPort]
    public var nodeLabels: [String: String]
    public var keepaliveInterval: Duration
    public var logLevel: Logger.Level
    /// The user of the built-in `shell` service; nil offers no shell.
    public var shellUser: String? = nil
    /// The kubeconfig of the `kubernetes` service; nil offers none.
    public var kubernetes: String? = nil
    /// The sources of the built-in `logs` service; empty offers no logs.
    public var logSources: [String: LogSource] = [:]
    public var logRoot = "/var/log"
    public var logFormat: LogFormat = .text
    public var metricsListen: HostPort? = nil
}

extension ClientSettings {
    public init(_ s: ResolvedSettings) {
        precondition(s.schema == Schemas.client)
        gateway = s.hostPort("gateway")!
        serverName = s.string("server-name")!
        cert = s.path("cert")!
        key = s.path("key")!
        gatewayCA = s.path("gateway-ca")!
        nodeName = s.string("node-name")
        // Entries were validated as host:port during loading.
        services = s.map("services").mapValues { try! HostPort.parse($0) }
        nodeLabels = s.map("node-labels")
        shellUser = s.string("shell-user")
        kubernetes = s.path("kubernetes")
        // Entries were validated as log sources during loading.
        logSources = s.map("log-sources").mapValues { try! LogSource.parse($0) }
        logRoot = s.path("log-root")!
        keepaliveInterval = s.duration("keepalive-interval")!
        logLevel = Logger.Level(rawValue: s.string("log-level")!)!
        logFormat = LogFormat(rawValue: s.string("log-format")!)!
        metricsListen = s.hostPort("metrics-listen")
    }
}

extension ClientSettings {
    /// A node must offer something — a TCP service or a built-in one (kubernetes, shell, logs) —
    /// or there is nothing to reach it for: refused before it enrolls or connects.
    public func checkOffersAService(configFile: String?) throws(CommandFailure) {
        guard services.isEmpty, kubernetes == nil, shellUser == nil, logSources.isEmpty else { return }
        throw .usage("this node offers no service: give at least one of --service NAME=HOST:PORT, --kubernetes KUBECONFIG, --shell-user USER or --log-source NAME=SOURCE (or set services, kubernetes, shell-user or log-sources in \(configFile ?? Schemas.client.defaultConfigPath))", .configInvalid)
    }
}

/// Typed settings of the operator commands (`tunnel ssh`, `tunnel proxy`, …).
public struct OperatorSettings: Sendable, Equatable {
    public var gateway: HostPort
    public var serverName: String
    public var cert: String
    public var key: String
    public var gatewayCA: String
    public var sshKnownHosts = "~/.ssh/known_hosts.tunnel"
    public var sshIdentity: String? = nil
    public var logLevel: Logger.Level
}

extension OperatorSettings {
    public init(_ s: ResolvedSettings) {
        precondition(s.schema == Schemas.operator)
        gateway = s.hostPort("gateway")!
        serverName = s.string("server-name")!
        cert = s.path("cert")!
        key = s.path("key")!
        gatewayCA = s.path("gateway-ca")!
        sshKnownHosts = s.path("ssh-known-hosts")!
        sshIdentity = s.path("ssh-identity")
        logLevel = Logger.Level(rawValue: s.string("log-level")!)!
    }
}
