import Logging
import TunnelClient

/// The settings schemas of the long-running roles, defined once, as data.
///
/// Each role also has a typed view (`GatewaySettings`, `ClientSettings`, `OperatorSettings`)
/// built from a `ResolvedSettings`, which is what the runtime should consume.
public enum Schemas {
    /// swift-log's level names, in order.
    public static let logLevels = Logger.Level.allCases.map(\.rawValue)

    package static func logLevel<Root>(_ field: WritableKeyPath<Root, Logger.Level> & Sendable) -> Setting<Root> {
        Setting(
            "log-level", .choice(logLevels), .defaultValue("info"), field, help: "Least severe log level to print",
            example: "info")
    }

    package static func logFormat<Root>(_ field: WritableKeyPath<Root, LogFormat> & Sendable) -> Setting<Root> {
        Setting(
            "log-format", .choice(LogFormat.allCases.map(\.rawValue)), .defaultValue("text"), field,
            help: "Log lines as text (with syslog priorities instead of times under systemd) or JSON", example: "json")
    }

    /// `interval` is the role's default; `misses`, how many intervals of silence declare the peer dead.
    package static func keepalive<Root>(
        _ field: WritableKeyPath<Root, Duration> & Sendable, interval: Duration, misses: Int
    ) -> Setting<Root> {
        let seconds = "\(interval.components.seconds)s"
        return Setting(
            "keepalive-interval", .duration, .defaultValue(seconds), field,
            help: "How often to ping the peer; it is declared dead after \(misses) intervals without a frame",
            example: seconds)
    }

    package static func metricsListen<Root>(_ field: WritableKeyPath<Root, HostPort?> & Sendable) -> Setting<Root> {
        Setting(
            "metrics-listen", .hostPort, optional: field,
            help:
                "Address for Prometheus /metrics, /healthz and /readyz over plain HTTP; off unless set (keep it on a private network)",
            example: "127.0.0.1:9443")
    }

    public static let client = SettingsSchema(
        command: "client", defaultConfigPath: "/etc/tunnel/client.yaml",
        settings: ClientSettings.declarations.map(\.spec))
    public static let `operator` = SettingsSchema(
        command: "operator", defaultConfigPath: "~/.config/tunnel/operator.yaml",
        settings: OperatorSettings.declarations.map(\.spec))

    /// The roles an edge node may also be configured for: their TUNNEL_* variables are not
    /// refused as typos when the client loads its settings (the gateway's are; a node runs none).
    public static let nodeRoles: [SettingsSchema] = [client, `operator`]
}

/// Typed settings of `tunnel client`.
public struct ClientSettings: Sendable, Equatable {
    /// The first gateway of the list (enrollment and `doctor` use it).
    public var gateway: HostPort
    /// The replicas after the first, when `--gateway` lists several.
    public var otherGateways: [HostPort] = []
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

    /// Settings made in code (`tunnel dev`, tests), not loaded: the memberwise initializer,
    /// which is internal to this module otherwise.
    package init(
        gateway: HostPort, serverName: String, cert: String, key: String, gatewayCA: String, nodeName: String? = nil,
        services: [String: HostPort], nodeLabels: [String: String], keepaliveInterval: Duration, logLevel: Logger.Level,
        shellUser: String? = nil, kubernetes: String? = nil, logSources: [String: LogSource] = [:],
        logRoot: String = "/var/log",
        logFormat: LogFormat = .text, metricsListen: HostPort? = nil
    ) {
        self.gateway = gateway
        self.serverName = serverName
        self.cert = cert
        self.key = key
        self.gatewayCA = gatewayCA
        self.nodeName = nodeName
        self.services = services
        self.nodeLabels = nodeLabels
        self.keepaliveInterval = keepaliveInterval
        self.logLevel = logLevel
        self.shellUser = shellUser
        self.kubernetes = kubernetes
        self.logSources = logSources
        self.logRoot = logRoot
        self.logFormat = logFormat
        self.metricsListen = metricsListen
    }
}

extension ClientSettings {
    /// Every gateway of the list, the first first.
    public var gateways: [HostPort] {
        get { [gateway] + otherGateways }
        set {
            gateway = newValue.first ?? gateway
            otherGateways = Array(newValue.dropFirst())
        }
    }

    /// A node must offer something — a TCP service or a built-in one (kubernetes, shell, logs) —
    /// or there is nothing to reach it for: refused before it enrolls or connects.
    public func checkOffersAService(configFile: String?) throws(CommandFailure) {
        guard services.isEmpty, kubernetes == nil, shellUser == nil, logSources.isEmpty else { return }
        throw .usage(
            "this node offers no service: give at least one of --service NAME=HOST:PORT, --kubernetes KUBECONFIG, --shell-user USER or --log-source NAME=SOURCE (or set services, kubernetes, shell-user or log-sources in \(configFile ?? Schemas.client.defaultConfigPath))",
            .configInvalid)
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

    /// Settings made in code (`tunnel doctor`'s probe, tests), not loaded: the memberwise
    /// initializer, which is internal to this module otherwise.
    package init(
        gateway: HostPort, serverName: String, cert: String, key: String, gatewayCA: String,
        sshKnownHosts: String = "~/.ssh/known_hosts.tunnel", sshIdentity: String? = nil, logLevel: Logger.Level
    ) {
        self.gateway = gateway
        self.serverName = serverName
        self.cert = cert
        self.key = key
        self.gatewayCA = gatewayCA
        self.sshKnownHosts = sshKnownHosts
        self.sshIdentity = sshIdentity
        self.logLevel = logLevel
    }
}
