import ArgumentParser
import Foundation
import TunnelGateway
import TunnelTLS
import TunnelText

// Commands stay thin: parse arguments, call one library function, print its result.

/// Loads settings for a command from the real environment.
func loadSettings(_ schema: SettingsSchema, config: String?, flags: [String: [String]]) throws(CommandFailure)
    -> ResolvedSettings
{
    try SettingsLoader.load(
        schema,
        SettingsInput(
            configPath: config, environment: ProcessInfo.processInfo.environment, flags: flags,
            knownSchemas: Schemas.all))
}

/// The root command, `tunnel`.
public struct Tunnel: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tunnel",
        abstract: "Reverse-tunnel maintenance gateway for edge fleets.",
        version: VersionInfo.current.line,
        subcommands: [
            GatewayCommand.self, ClientCommand.self, DevCommand.self,
            NodesCommand.self, SSHCommand.self, ShellCommand.self, LogsCommand.self, ProxyCommand.self,
            ForwardCommand.self, KubectlCommand.self, KubeProxyCommand.self,
            TokenCommand.self, UserCommand.self, NodeCommand.self, PolicyCommand.self, AuditCommand.self,
            CACommand.self, LoginCommand.self, RenewCommand.self, WhoamiCommand.self, SSHConfigCommand.self,
            KubeconfigCommand.self,
            DoctorCommand.self, VersionCommand.self,
        ]
    )
    public init() {}
}

public struct GatewayCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "gateway", abstract: "Run the central gateway.")
    static let schema = Schemas.gateway

    @Option(help: "Config file (default \(Schemas.gateway.defaultConfigPath) if it exists; env TUNNEL_CONFIG)")
    var config: String?
    @Option(help: schema.argumentHelp("listen")) var listen: String?
    @Option(help: schema.argumentHelp("data-dir")) var dataDir: String?
    @Option(help: schema.argumentHelp("pki-dir")) var pkiDir: String?
    @Option(help: schema.argumentHelp("admin-socket")) var adminSocket: String?
    @Option(help: schema.argumentHelp("policy")) var policy: String?
    @Option(help: schema.argumentHelp("store")) var store: String?
    @Option(help: schema.argumentHelp("replica-name")) var replicaName: String?
    @Option(help: schema.argumentHelp("advertise")) var advertise: String?
    @Option(help: schema.argumentHelp("node-certificate-ttl")) var nodeCertificateTtl: String?
    @Option(help: schema.argumentHelp("reenroll-window")) var reenrollWindow: String?
    @Option(help: schema.argumentHelp("drain-timeout")) var drainTimeout: String?
    @Option(help: schema.argumentHelp("handshake-timeout")) var handshakeTimeout: String?
    @Option(help: schema.argumentHelp("session-resumption")) var sessionResumption: String?
    @Option(help: schema.argumentHelp("handshake-threads")) var handshakeThreads: String?
    @Option(help: schema.argumentHelp("metrics-listen")) var metricsListen: String?
    @Option(help: schema.argumentHelp("keepalive-interval")) var keepaliveInterval: String?
    @Option(help: schema.argumentHelp("log-level")) var logLevel: String?
    @Option(help: schema.argumentHelp("log-format")) var logFormat: String?
    @OptionGroup(title: "Admission limits (docs/TUNNEL.md §7)") var admission: AdmissionFlags
    @Flag(help: "Print the resolved settings with their sources, check the certificate files, and exit")
    var checkConfig = false

    public init() {}

    var flags: [String: [String]] {
        given([
            ("listen", listen), ("data-dir", dataDir), ("pki-dir", pkiDir), ("admin-socket", adminSocket),
            ("policy", policy),
            ("store", store), ("replica-name", replicaName), ("advertise", advertise),
            ("node-certificate-ttl", nodeCertificateTtl), ("reenroll-window", reenrollWindow),
            ("drain-timeout", drainTimeout),
            ("handshake-timeout", handshakeTimeout), ("session-resumption", sessionResumption),
            ("handshake-threads", handshakeThreads),
            ("metrics-listen", metricsListen),
            ("keepalive-interval", keepaliveInterval), ("log-level", logLevel),
            ("log-format", logFormat),
        ])
        .merging(admission.flags) { $1 }
    }

    public func run() throws {
        let settings = try loadSettings(Self.schema, config: config, flags: flags)
        let gateway = try GatewaySettings(settings)
        if checkConfig {
            print(settings.report())
            // The files too: a missing or mismatched certificate should show up here, not at start.
            let configuration = try gateway.runtimeConfiguration()
            print("pki-dir files: readable, matching and valid now")
            do { _ = try Gateway.loadPolicy(configuration.policyPath) } catch {
                throw CommandFailure.usage(error.message, .configInvalid)
            }
            print("policy: \(configuration.policyPath ?? "built-in (role admin may do everything)") is valid")
            print(
                "open-file limit: \(try AdmissionSettings.checkDescriptors(configuration.admission).descriptors), enough for the anonymous caps"
            )
            return
        }
        // First, before the PKI, the store or the audit log in data-dir is opened; held until exit.
        let lock = try gateway.lockDataDirectory()
        defer { withExtendedLifetime(lock) {} }
        let logger = TunnelLogging.bootstrap(level: gateway.logLevel, format: gateway.logFormat)
        logger.debug("settings loaded", metadata: ["config.file": "\(settings.configFile ?? "none")"])
        var configuration = try gateway.runtimeConfiguration()
        do { _ = try Gateway.loadPolicy(configuration.policyPath) } catch {
            throw CommandFailure.usage(error.message, .configInvalid)
        }
        configuration.admission = try AdmissionSettings.checkDescriptors(configuration.admission).fitted
        let store = try gateway.openStore()
        try runUntilSignalled(logger: logger) { loop throws(CommandFailure) in
            let running = try startGateway(configuration, logger: logger) {
                () throws(GatewayLaunchFailure) in
                try Gateway.launch(
                    configuration, store: store, adminSocket: gateway.adminSocket, loop: loop, logger: logger
                ).gateway
            }
            let metrics = try startMetrics(
                gateway.metricsListen, loop: loop, logger: logger,
                exposition: running.metricsExposition, unreadiness: running.unreadiness)
            let hangup = running.reloadPolicyOnHangup()
            releaseStartupPages(logger: logger)
            return { stopped in
                hangup?.close()
                metrics?.close()
                running.stop(completion: stopped)
            }
        }
        logger.info("gateway stopped")
    }
}

public struct CACommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Create the gateway's PKI before its first start, to choose the names in its certificate.",
        subcommands: [CAInitCommand.self])
    public init() {}
}

/// Parses `--lifetime` with the settings' duration rules.
func lifetimeSeconds(_ text: String) throws(CommandFailure) -> Int64 {
    do throws(ValueProblem) {
        let seconds = DurationText.seconds(try DurationText.parse(text))
        guard seconds >= 60 else { throw ValueProblem("\"\(text)\" is shorter than a minute") }
        return seconds
    } catch {
        throw .usage("--lifetime: \(error.text)", .usage)
    }
}

func printFiles(_ files: [WrittenFile]) {
    let width = files.map(\.path.count).max() ?? 0
    for file in files {
        print(
            "  \(file.path.padding(toLength: width, withPad: " ", startingAt: 0))  \(String(file.mode, radix: 8).leftPadded(to: 4))  \(file.what)"
        )
    }
}

public struct CAInitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create the node CA, the operator CA and the gateway certificate.")

    @Option(help: "Directory for the CA files (created 0700)") var dir: String
    @Option(help: "DNS name clients dial for the gateway; repeatable (default: localhost and this host's name)")
    var gatewayName: [String] = []
    @Option(help: "IP address clients dial for the gateway; repeatable (default: 127.0.0.1 and ::1)") var gatewayIp:
        [String] = []
    @Option(help: "Lifetime of the gateway certificate") var gatewayLifetime = "8760h"
    @Flag(help: "Replace an existing CA (every certificate it issued stops working)") var force = false

    public init() {}

    public func run() throws {
        let lock = try DataDirectoryLock.guarding(pkiDirectory: dir)
        defer { withExtendedLifetime(lock) {} }
        let result = try CADirectory.create(
            .init(
                directory: dir, gatewayNames: gatewayName, gatewayIPs: gatewayIp, force: force,
                gatewayLifetime: try lifetimeSeconds(gatewayLifetime)))
        print("Created in \(dir):")
        printFiles(result.files)
        print("Gateway certificate names: \((result.gatewayNames + result.gatewayIPs).joined(separator: ", "))")
        print("Node CA \(fingerprintText(result.nodeCAFingerprint))")
        print("Operator CA \(fingerprintText(result.operatorCAFingerprint))")
        print(
            "Point the gateway's pki-dir here (default /var/lib/tunnel/gateway/pki); it signs with the CA keys, so keep this directory on the gateway only."
        )
    }
}

public struct LoginCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Install an operator bundle as your tunnel identity.")

    @Argument(help: "The bundle from `tunnel user add`") var bundle: String
    @Option(help: "Where to install (default $XDG_CONFIG_HOME/tunnel or ~/.config/tunnel)") var configDir: String?

    public init() {}

    public func run() throws {
        let dir =
            try configDir ?? OperatorLogin.defaultConfigDirectory(environment: ProcessInfo.processInfo.environment)
        let result = try OperatorLogin.install(bundlePath: bundle, configDirectory: dir)
        print(
            "Logged in as \(result.identity) for gateway \(result.gateway)\(result.serverName.map { " (TLS name \($0))" } ?? ""), certificate valid until \(isoDate(result.notAfter))."
        )
        printFiles(result.files)
        print("You may now delete \(bundle).")
    }
}

public struct WhoamiCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show the operator identity and gateway in use.")

    @OptionGroup var options: OperatorOptions
    @OptionGroup var output: OutputOptions

    public init() {}

    public func run() throws {
        let status = try OperatorStatus.read(try options.settings())
        print(output.isJSON ? jsonText(status) : status.text)
    }
}

public struct SSHConfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ssh-config", abstract: "Print an ~/.ssh/config block so that `ssh USER@NODE.tunnel` works.")

    @Option(
        help: "Operator config file the ProxyCommand uses (default $TUNNEL_CONFIG, else ~/.config/tunnel/operator.yaml)"
    ) var config: String?

    public init() {}

    public func run() throws {
        let options = try OperatorOptions.parse(config.map { ["--config", $0] } ?? [])
        let configPath = options.resolvedConfigPath()
        // The settings, when they load, say which known_hosts file and key `tunnel ssh` uses.
        let settings = try? options.settings()
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        print(
            sshConfigBlock(
                tunnelPath: executable, configPath: configPath,
                knownHosts: settings?.sshKnownHosts ?? "~/.ssh/known_hosts.tunnel",
                identity: settings?.sshIdentity), terminator: "")
    }
}

/// The process entry point: runs `Tunnel`, printing failures as `tunnel: MESSAGE`.
public enum TunnelMain {
    public typealias Outcome = CommandMain.Outcome

    /// What the process prints and returns for an error thrown by parsing or `run()`.
    public static func outcome(of error: any Error) -> Outcome {
        CommandMain.outcome(of: error, root: Tunnel.self)
    }

    public static func run(arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        if arguments.first == "client" {
            CommandMain.runAgent(arguments: Array(arguments.dropFirst()), command: "tunnel client")
        }
        CommandMain.run(Tunnel.self, arguments: arguments)
    }
}
