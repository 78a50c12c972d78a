import Glibc
import TunnelIO

extension SettingSpec {
    /// What a flag's value looks like in `--help` (`--gateway <host:port,...>`).
    package var valueName: String {
        switch kind {
        case .hostPort: "host:port"
        case .hostPorts: "host:port,..."
        case .duration: "duration"
        case .path: "path"
        case .map: "k=v,..."
        case .bool: "bool"
        case .integer: "n"
        case .hostName: "name"
        case .choice, .string: "value"
        }
    }
}

/// Collects the flags that were given, keyed by schema key.
package func given(_ pairs: [(String, String?)]) -> [String: [String]] {
    var flags: [String: [String]] = [:]
    for (key, value) in pairs { if let value { flags[key, default: []].append(value) } }
    return flags
}

/// The process environment as a dictionary, read from `environ` (no Foundation).
package func processEnvironment() -> [String: String] {
    var environment: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let equals = text.firstIndex(of: "=") {
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        entry += 1
    }
    return environment
}

/// `tunnel client` and `tunnel-client`: load the settings, enroll if needed, and run the node's
/// client until a signal ends it.
public enum ClientAgent {
    public static let schema = Schemas.client

    /// Parses `arguments` and does what they ask: print the help or the version, or run.
    public static func perform(_ arguments: [String], command: String) throws(CommandFailure) {
        let invocation = try ClientFlags.parse(arguments, command: command)
        switch invocation.action {
        case .help: print(ClientFlags.helpText(command: command))
        case .version: print(VersionInfo.current.line)
        case .run: try run(invocation)
        }
    }

    public static func run(_ invocation: ClientInvocation) throws(CommandFailure) {
        let token = invocation.token
        let settings = try SettingsLoader.load(
            schema,
            SettingsInput(configPath: invocation.config, environment: processEnvironment(), flags: invocation.flags))
        let client = try ClientSettings(settings)
        try client.checkOffersAService(configFile: settings.configFile)
        if invocation.checkConfig {
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
            // Each time a session is up, the pages only starting touched go back (StartupPages).
            edge.onStateChange = { connected, _ in
                guard connected else { return }
                releaseStartupPages(logger: logger)
            }
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
