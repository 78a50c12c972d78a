import ArgumentParser
import TunnelIO

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension SettingsSchema {
    /// `--help` text for a setting's flag, straight from the schema.
    package func argumentHelp(_ key: String) -> ArgumentHelp {
        guard let spec = spec(key) else { preconditionFailure("no setting \(key) in \(command)") }
        let valueName: String
        switch spec.kind {
        case .hostPort: valueName = "host:port"
        case .hostPorts: valueName = "host:port,..."
        case .duration: valueName = "duration"
        case .path: valueName = "path"
        case .map: valueName = "k=v,..."
        case .bool: valueName = "bool"
        case .integer: valueName = "n"
        case .hostName: valueName = "name"
        case .choice, .string: valueName = "value"
        }
        return ArgumentHelp(spec.fullHelp, valueName: valueName)
    }
}

/// Collects the flags that were given, keyed by schema key.
package func given(_ pairs: [(String, String?)]) -> [String: [String]] {
    var flags: [String: [String]] = [:]
    for (key, value) in pairs { if let value { flags[key, default: []].append(value) } }
    return flags
}

public struct ClientCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "client", abstract: "Run the edge agent: dial the gateway and serve the configured services.")
    static let schema = Schemas.client

    @Option(help: "Config file (default \(Schemas.client.defaultConfigPath) if it exists; env TUNNEL_CONFIG)")
    var config: String?
    @Option(help: schema.argumentHelp("gateway")) var gateway: String?
    @Option(help: schema.argumentHelp("server-name")) var serverName: String?
    @Option(help: schema.argumentHelp("cert")) var cert: String?
    @Option(help: schema.argumentHelp("key")) var key: String?
    @Option(help: schema.argumentHelp("gateway-ca")) var gatewayCa: String?
    @Option(help: schema.argumentHelp("node-name")) var nodeName: String?
    @Option(help: "Join token from `tunnel token create`; used only while the node has no certificate") var token:
        String?
    @Option(help: schema.argumentHelp("services")) var services: [String] = []
    @Option(
        help: ArgumentHelp("One service NAME=HOST:PORT; repeatable, same as --services", valueName: "name=host:port"))
    var service: [String] = []
    @Option(help: schema.argumentHelp("node-labels")) var nodeLabels: [String] = []
    @Option(help: ArgumentHelp("One label KEY=VALUE; repeatable, same as --node-labels", valueName: "k=v"))
    var nodeLabel: [String] = []
    @Option(help: schema.argumentHelp("log-sources")) var logSources: [String] = []
    @Option(
        help: ArgumentHelp("One log source NAME=SOURCE; repeatable, same as --log-sources", valueName: "name=source"))
    var logSource: [String] = []
    @Option(help: schema.argumentHelp("log-root")) var logRoot: String?
    @Option(help: schema.argumentHelp("shell-user")) var shellUser: String?
    @Option(help: schema.argumentHelp("kubernetes")) var kubernetes: String?
    @Option(help: schema.argumentHelp("metrics-listen")) var metricsListen: String?
    @Option(help: schema.argumentHelp("keepalive-interval")) var keepaliveInterval: String?
    @Option(help: schema.argumentHelp("log-level")) var logLevel: String?
    @Option(help: schema.argumentHelp("log-format")) var logFormat: String?
    @Flag(help: "Print the resolved settings with their sources and exit") var checkConfig = false

    public init() {}

    package var flags: [String: [String]] {
        var flags = given([
            ("gateway", gateway), ("server-name", serverName), ("cert", cert), ("key", key), ("gateway-ca", gatewayCa),
            ("node-name", nodeName),
            ("shell-user", shellUser), ("kubernetes", kubernetes), ("log-root", logRoot),
            ("metrics-listen", metricsListen), ("keepalive-interval", keepaliveInterval), ("log-level", logLevel),
            ("log-format", logFormat),
        ])
        if !(services + service).isEmpty { flags["services"] = services + service }
        if !(nodeLabels + nodeLabel).isEmpty { flags["node-labels"] = nodeLabels + nodeLabel }
        if !(logSources + logSource).isEmpty { flags["log-sources"] = logSources + logSource }
        return flags
    }

    public func run() throws {
        let settings = try SettingsLoader.load(
            Self.schema,
            SettingsInput(configPath: config, environment: ProcessInfo.processInfo.environment, flags: flags))
        let client = try ClientSettings(settings)
        try client.checkOffersAService(configFile: settings.configFile)
        if checkConfig {
            print(settings.report())
            if !client.isEnrolled, token != nil {
                print("not enrolled yet: the first start enrolls with the token")
                return
            }
            _ = try client.runtimeConfiguration()
            print("certificate, key and gateway CA: readable and matching")
            return
        }
        let logger = TunnelLogging.bootstrap(level: client.logLevel, format: client.logFormat)
        logger.debug("settings loaded", metadata: ["config.file": "\(settings.configFile ?? "none")"])
        if client.isEnrolled {
            if token != nil {
                logger.info("already enrolled; the token is not needed any more", metadata: ["cert": "\(client.cert)"])
            }
        } else if let token {
            try client.enroll(token: token, logger: logger)
        }
        let configuration = try client.runtimeConfiguration()
        try runUntilSignalled(logger: logger) { loop throws(CommandFailure) in
            let edge = try startEdgeClient(configuration, loop: loop, logger: logger)
            let metrics = try startMetrics(
                client.metricsListen, loop: loop, logger: logger,
                exposition: {
                    edge.metrics.exposition(sessionUp: edge.isConnected, certificateNotAfter: edge.certificate.notAfter)
                },
                unreadiness: { edge.isConnected ? [] : ["no session to the gateway"] })
            return { stopped in
                metrics?.close()
                edge.stop()
                stopped()
            }
        }
        logger.info("client stopped")
    }
}
