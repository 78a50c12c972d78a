import Logging
import TunnelClient
import TunnelEdgeCore

// Every setting of the node's roles (client, operator), declared once: key (and from it `TUNNEL_*` and the
// flag), kind (validation), default, help, and the typed field it fills. `Schemas` is built
// from these, and the typed settings are read through them: no look-up by string. The gateway's
// are in TunnelCommands (GatewaySchema.swift): its admission limits are TunnelGateway types.

extension ClientSettings: DeclaredSettings {
    public static let declarations: [Setting<ClientSettings>] = [
        Setting(
            "gateway", .hostPorts, .required, \.gateways,
            help:
                "The gateway to dial, HOST:PORT; a cluster's replicas comma-separated (or one DNS name with several addresses), spread over and failed over with backoff",
            example: "gateway.example.com:7443"),
        Setting(
            "server-name", .hostName, .derived(.hostOf(key: "gateway")), \.serverName,
            help: "TLS name the gateway certificate must carry, on every replica", example: "gateway.example.com"),
        Setting(
            "cert", .path, .defaultValue("/var/lib/tunnel/client/node.crt"), \.cert,
            help: "This node's certificate (PEM); written by enrollment and renewal",
            example: "/var/lib/tunnel/client/node.crt"),
        Setting(
            "key", .path, .defaultValue("/var/lib/tunnel/client/node.key"), \.key,
            help: "This node's private key (PEM, 0600); made on the node at enrollment",
            example: "/var/lib/tunnel/client/node.key"),
        Setting(
            "gateway-ca", .path, .defaultValue("/var/lib/tunnel/client/gateway-ca.crt"), \.gatewayCA,
            help: "CA certificate that verifies the gateway; written by enrollment",
            example: "/var/lib/tunnel/client/gateway-ca.crt"),
        Setting(
            "node-name", .string, optional: \.nodeName,
            help: "Name to enroll as, when the token does not fix it (default: this host's name)",
            example: "plant-a-press-3"),
        Setting(
            "services", .map(.services), .defaultValue(""), \.services,
            help:
                "TCP services the gateway may ask for, NAME=HOST:PORT; nothing else is ever dialed; none is needed when the node offers kubernetes, shell or logs",
            example: "ssh=127.0.0.1:22,k3s=127.0.0.1:6443", singularFlag: "service"),
        Setting(
            "node-labels", .map(.labels), .defaultValue(""), \.nodeLabels,
            help:
                "Labels reported to the gateway, KEY=VALUE (descriptive only: the policy matches the labels of the join token and of `tunnel node label`)",
            example: "site=berlin,line=3", singularFlag: "node-label"),
        Setting(
            "log-sources", .map(.logSources(rootKey: "log-root")), .defaultValue(""), \.logSources,
            help:
                "Logs `tunnel logs` may read, NAME=SOURCE: a file or glob under log-root, or journald:UNIT; no logs service unless set",
            example: "syslog=/var/log/syslog,app=/var/log/app/*.log,k3s=journald:k3s", singularFlag: "log-source"),
        Setting(
            "log-root", .path, .defaultValue("/var/log"), \.logRoot,
            help: "Directory every file log source must lie under, symlinks resolved", example: "/var/log"),
        Setting(
            "kubernetes", .path, optional: \.kubernetes,
            help:
                "Kubeconfig of this node's API server (k3s.yaml or a service account's); serves the kubernetes service, kubectl as each operator by impersonation",
            example: "/etc/tunnel/kubernetes.kubeconfig"),
        Setting(
            "shell-user", .string, optional: \.shellUser,
            help:
                "Local user whose login shell the built-in shell service runs (`tunnel shell`); no shell service unless set",
            example: "maint"),
        Schemas.metricsListen(\.metricsListen),
        Schemas.keepalive(\.keepaliveInterval, interval: NodeKeepalive.interval, misses: NodeKeepalive.missLimit),
        Schemas.logLevel(\.logLevel),
        Schemas.logFormat(\.logFormat),
    ]

    public static var unfilled: ClientSettings {
        ClientSettings(
            gateway: HostPort(host: "", port: 0), serverName: "", cert: "", key: "", gatewayCA: "", services: [:],
            nodeLabels: [:],
            keepaliveInterval: .zero, logLevel: .info)
    }
}

extension OperatorSettings: DeclaredSettings {
    public static let declarations: [Setting<OperatorSettings>] = [
        Setting(
            "gateway", .hostPort, .required, \.gateway, help: "The gateway to dial, HOST:PORT",
            example: "gateway.example.com:7443"),
        Setting(
            "server-name", .hostName, .derived(.hostOf(key: "gateway")), \.serverName,
            help: "TLS name the gateway certificate must carry", example: "gateway.example.com"),
        Setting(
            "cert", .path, .defaultValue("~/.config/tunnel/operator.crt"), \.cert,
            help: "Your operator certificate (PEM)", example: "~/.config/tunnel/operator.crt"),
        Setting(
            "key", .path, .defaultValue("~/.config/tunnel/operator.key"), \.key,
            help: "Your operator private key (PEM)", example: "~/.config/tunnel/operator.key"),
        Setting(
            "gateway-ca", .path, .defaultValue("~/.config/tunnel/gateway-ca.crt"), \.gatewayCA,
            help: "CA certificate that verifies the gateway", example: "~/.config/tunnel/gateway-ca.crt"),
        Setting(
            "ssh-known-hosts", .path, .defaultValue("~/.ssh/known_hosts.tunnel"), \.sshKnownHosts,
            help: "known_hosts file `tunnel ssh` keeps nodes' host keys in", example: "~/.ssh/known_hosts.tunnel"),
        Setting(
            "ssh-identity", .path, optional: \.sshIdentity,
            help: "Private key `tunnel ssh` offers first (ssh -i); unset, ssh's own choice",
            example: "~/.ssh/id_ed25519"),
        Schemas.logLevel(\.logLevel),
    ]

    public static var unfilled: OperatorSettings {
        OperatorSettings(
            gateway: HostPort(host: "", port: 0), serverName: "", cert: "", key: "", gatewayCA: "", logLevel: .info)
    }
}
