import Logging

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

    static func keepalive() -> SettingSpec {
        SettingSpec("keepalive-interval", .duration, .defaultValue("15s"), help: "How often to ping the peer; dead after 3 missed pings", example: "15s")
    }

    public static let gateway = SettingsSchema(
        command: "gateway",
        defaultConfigPath: "/etc/tunnel/gateway.yaml",
        settings: [
            SettingSpec("listen", .hostPort, .defaultValue("0.0.0.0:7443"), help: "Address to accept node and operator connections on", example: "0.0.0.0:7443"),
            SettingSpec("data-dir", .path, .defaultValue("/var/lib/tunnel/gateway"), help: "Directory for the gateway's state (today only its pki-dir; the database and audit log come later)", example: "/var/lib/tunnel/gateway"),
            SettingSpec("pki-dir", .path, .derived(.pathInside(key: "data-dir", component: "pki")), help: "Directory with gateway.crt, gateway.key, node-ca.crt, operator-ca.crt", example: "/var/lib/tunnel/gateway/pki"),
            SettingSpec("drain-timeout", .duration, .defaultValue("30s"), help: "How long shutdown waits for open streams", example: "30s"),
            SettingSpec("handshake-timeout", .duration, .defaultValue("10s"), help: "Time allowed for a TLS handshake", example: "10s"),
            keepalive(),
            logLevel(),
        ]
    )

    public static let client = SettingsSchema(
        command: "client",
        defaultConfigPath: "/etc/tunnel/client.yaml",
        settings: [
            SettingSpec("gateway", .hostPort, .required, help: "The gateway to dial, HOST:PORT", example: "gateway.example.com:7443"),
            SettingSpec("server-name", .hostName, .derived(.hostOf(key: "gateway")), help: "TLS name the gateway certificate must carry", example: "gateway.example.com"),
            SettingSpec("cert", .path, .defaultValue("/etc/tunnel/node.crt"), help: "This node's certificate (PEM)", example: "/etc/tunnel/node.crt"),
            SettingSpec("key", .path, .defaultValue("/etc/tunnel/node.key"), help: "This node's private key (PEM)", example: "/etc/tunnel/node.key"),
            SettingSpec("gateway-ca", .path, .defaultValue("/etc/tunnel/gateway-ca.crt"), help: "CA certificate that verifies the gateway", example: "/etc/tunnel/gateway-ca.crt"),
            SettingSpec("services", .map(.services), .required, help: "Services the gateway may ask for, NAME=HOST:PORT; nothing else is ever dialed", example: "ssh=127.0.0.1:22,k3s=127.0.0.1:6443", singularFlag: "service"),
            SettingSpec("node-labels", .map(.labels), .defaultValue(""), help: "Labels reported to the gateway, KEY=VALUE", example: "site=berlin,line=3", singularFlag: "node-label"),
            keepalive(),
            logLevel(),
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
    public var drainTimeout: Duration
    public var handshakeTimeout: Duration
    public var keepaliveInterval: Duration
    public var logLevel: Logger.Level
}

extension GatewaySettings {
    public init(_ s: ResolvedSettings) {
        precondition(s.schema == Schemas.gateway)
        listen = s.hostPort("listen")!
        dataDir = s.path("data-dir")!
        pkiDir = s.path("pki-dir")!
        drainTimeout = s.duration("drain-timeout")!
        handshakeTimeout = s.duration("handshake-timeout")!
        keepaliveInterval = s.duration("keepalive-interval")!
        logLevel = Logger.Level(rawValue: s.string("log-level")!)!
    }
}

/// Typed settings of `tunnel client`.
public struct ClientSettings: Sendable, Equatable {
    public var gateway: HostPort
    public var serverName: String
    public var cert: String
    public var key: String
    public var gatewayCA: String
    /// Never empty: the schema requires at least one service.
    public var services: [String: HostPort]
    public var nodeLabels: [String: String]
    public var keepaliveInterval: Duration
    public var logLevel: Logger.Level
}

extension ClientSettings {
    public init(_ s: ResolvedSettings) {
        precondition(s.schema == Schemas.client)
        gateway = s.hostPort("gateway")!
        serverName = s.string("server-name")!
        cert = s.path("cert")!
        key = s.path("key")!
        gatewayCA = s.path("gateway-ca")!
        // Entries were validated as host:port during loading.
        services = s.map("services").mapValues { try! HostPort.parse($0) }
        nodeLabels = s.map("node-labels")
        keepaliveInterval = s.duration("keepalive-interval")!
        logLevel = Logger.Level(rawValue: s.string("log-level")!)!
    }
}

/// Typed settings of the operator commands (`tunnel ssh`, `tunnel proxy`, …).
public struct OperatorSettings: Sendable, Equatable {
    public var gateway: HostPort
    public var serverName: String
    public var cert: String
    public var key: String
    public var gatewayCA: String
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
        logLevel = Logger.Level(rawValue: s.string("log-level")!)!
    }
}
