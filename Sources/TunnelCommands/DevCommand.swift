import ArgumentParser
import Foundation
import Logging
import TunnelClient
import TunnelEdgeCore
import TunnelGateway
import TunnelOperator
import TunnelRuntime
import TunnelTLS
import TunnelText

/// `tunnel dev`: the whole thing on one machine with embedded defaults, for a first look and
/// for demos. It makes a development PKI in a local directory (once), then runs a gateway and a
/// node client in one process, the node offering a recorded shell, a demo log and ssh (to a
/// private sshd when nothing answers on the ssh target), and prints commands to try, each of
/// which works as printed. A second run on the same directory carries on where the last stopped.
public struct DevCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a sandbox: a gateway with a development CA and a local node (shell, logs, ssh) in one process.",
        discussion: """
            Everything is kept in --dir (tunnel-dev): the gateway's CAs, database and audit log, the node's key, \
            an admin login, a demo log and the private sshd's keys. When nothing answers on the ssh service's \
            target, a private sshd from the system's OpenSSH serves it on a free loopback port, accepting only \
            a sandbox key made for it.
            """)

    @Option(help: "Directory for the sandbox's files") var dir = "tunnel-dev"
    @Option(help: "Where the gateway listens") var listen = "127.0.0.1:7443"
    @Option(help: "Name of the local node") var node = "dev-node"
    @Option(help: "A service the node offers, NAME=HOST:PORT; repeatable") var service: [String] = ["ssh=127.0.0.1:22"]
    @Option(help: "Log level") var logLevel = "info"
    @Option(help: "Log lines as text or json") var logFormat = "text"

    public init() {}

    public func run() throws {
        let options = try checkedOptions()
        let paths = DevelopmentFiles(directory: options.directory, node: node)
        let logger = TunnelLogging.bootstrap(level: options.level, format: options.format)
        let gatewaySettings = GatewaySettings.forDevelopment(listen: options.listen, dataDir: paths.gateway)
        let lock = try gatewaySettings.lockDataDirectory(fix: "stop it, or give this sandbox another --dir")
        defer { withExtendedLifetime(lock) {} }
        try makeCAIfMissing(gatewaySettings, paths: paths)
        let logs = try DevSandbox.demoLogs(directory: options.directory)
        let configuration = try sandboxConfiguration(gatewaySettings)
        let store = try gatewaySettings.openStore()
        try runUntilSignalled(logger: logger) { loop throws(CommandFailure) in
            let (gateway, bound) = try startGateway(configuration, logger: logger) { () throws(GatewayLaunchFailure) in
                try Gateway.launch(
                    configuration, store: store, adminSocket: gatewaySettings.adminSocket, loop: loop, logger: logger)
            }
            let sandbox = try prepareNode(
                options, paths: paths, logs: logs,
                gateway: (gateway, HostPort(host: bound.ip, port: bound.port), "\(bound)"),
                adminSocket: gatewaySettings.adminSocket, launcher: ChildLauncher(loop: loop), logger: logger)
            let devNode = try SandboxNode(
                settings: sandbox.client, loop: loop, logger: logger,
                token: { () throws(CommandFailure) in try paths.token(for: node, gateway: gateway) },
                // The commands to try are printed once the node is there, so each works at once.
                onFirstSession: {
                    print(sandbox.guide.text)
                    fflush(nil)
                })
            return { stopped in
                devNode.stop()
                sandbox.ssh?.stop()
                gateway.stop(completion: stopped)
            }
        }
    }

    /// The options, checked in the order they are reported, before anything starts.
    private func checkedOptions() throws(CommandFailure) -> DevOptions {
        let directory = (dir as NSString).isAbsolutePath ? dir : FileManager.default.currentDirectoryPath + "/" + dir
        let listenAddress: HostPort
        do { listenAddress = try HostPort.parse(listen) } catch {
            throw .usage("--listen: \(error.text)", .usage)
        }
        let services = try parseServices(service)
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw .usage(
                "--log-level: \"\(logLevel)\" is not one of \(Schemas.logLevels.joined(separator: ", "))", .usage)
        }
        // Checked before anything starts, so a second sandbox says so in one sentence.
        if DevSandbox.answers(listenAddress) {
            throw .failed(
                "\(listenAddress) is in use, most likely by another `tunnel dev` or a gateway; stop it, or give this one another port with --listen 127.0.0.1:PORT",
                .portInUse)
        }
        guard let format = LogFormat(rawValue: logFormat) else {
            throw .usage(
                "--log-format: \"\(logFormat)\" is not one of \(LogFormat.allCases.map(\.rawValue).joined(separator: ", "))",
                .usage)
        }
        return DevOptions(directory: directory, listen: listenAddress, services: services, level: level, format: format)
    }

    /// Makes the development PKI on the first run; later runs reuse it.
    private func makeCAIfMissing(_ settings: GatewaySettings, paths: DevelopmentFiles) throws {
        guard !GatewayPKI.isPresent(directory: settings.pkiDir) else { return }
        try makePrivateDirectory(paths.gateway)
        _ = try CADirectory.create(
            .init(directory: settings.pkiDir, gatewayNames: ["localhost"], gatewayIPs: ["127.0.0.1", "::1"]))
    }

    /// The gateway's configuration, with the sandbox's checkpoint policy.
    private func sandboxConfiguration(_ settings: GatewaySettings) throws(CommandFailure) -> GatewayConfiguration {
        var configuration = try settings.runtimeConfiguration()
        // A sandbox signs each record as the next one comes (and the last within a second), so
        // `tunnel audit verify` has something to verify from the first command on; a production
        // gateway signs every 1000 records or 60 s.
        configuration.auditPolicy.checkpointEvery = 1
        configuration.auditPolicy.checkpointInterval = 1
        return configuration
    }

    /// Once the gateway runs: the dev operator's login, ssh (a private sshd when needed), the
    /// node's settings (also written as its client config) and the guide to print.
    private func prepareNode(
        _ options: DevOptions, paths: DevelopmentFiles, logs: (root: String, source: LogSource),
        gateway: (running: Gateway, address: HostPort, bound: String), adminSocket: String,
        launcher: ChildLauncher, logger: Logger
    ) throws(CommandFailure) -> (client: ClientSettings, ssh: DevSSHServer?, guide: DevGuide) {
        try paths.loginOperator(gateway: gateway.running, address: gateway.address)
        var services = options.services
        let ssh = startPrivateSSHIfNeeded(
            services: &services, directory: options.directory, launcher: launcher, logger: logger)
        if let sshd = ssh.server {
            try paths.addSSHSettings(identity: sshd.files.userKey, knownHosts: sshd.files.knownHosts)
        }
        let client = ClientSettings(
            gateway: gateway.address, serverName: "localhost",
            cert: paths.nodeCertificate, key: paths.nodeKey, gatewayCA: paths.gatewayCA, nodeName: node,
            services: services, nodeLabels: ["env": "dev"], keepaliveInterval: NodeKeepalive.interval,
            logLevel: options.level,
            shellUser: String(cString: getpwuid(geteuid()).pointee.pw_name),
            logSources: [DevSandbox.logSourceName: logs.source], logRoot: logs.root)
        try paths.writeClientConfig(client)
        let guide = DevGuide(
            directory: options.directory, node: node, gateway: gateway.bound,
            services: services.mapValues(\.description), sshNote: ssh.note, adminSocket: adminSocket)
        return (client, ssh.server, guide)
    }

    /// When the ssh service's target does not answer, a private sshd takes its place (or, with
    /// no OpenSSH installed, a note says what to install). Returns the server and a note for the guide.
    private func startPrivateSSHIfNeeded(
        services: inout [String: HostPort], directory: String, launcher: ChildLauncher,
        logger: Logger
    ) -> (server: DevSSHServer?, note: String?) {
        guard let target = services["ssh"], !DevSandbox.answers(target) else { return (nil, nil) }
        if let reason = DevSSHServer.unavailableReason() {
            return (nil, "nothing answers on \(target) and \(reason); everything but ssh works")
        }
        do {
            let server = try DevSSHServer(
                directory: "\(directory)/sshd", hostAlias: "\(node)\(sshHostSuffix)", launcher: launcher, logger: logger
            )
            guard server.waitUntilListening(seconds: 5) else {
                server.stop()
                return (
                    nil,
                    "nothing answers on \(target), and the private sshd did not start (see \(server.files.log)); everything but ssh works"
                )
            }
            services["ssh"] = HostPort(host: "127.0.0.1", port: server.port)
            return (
                server,
                "nothing answers on \(target), so a private sshd serves it (keys and log in \(server.files.directory))"
            )
        } catch {
            return (
                nil,
                "nothing answers on \(target), and the private sshd cannot start: \(error.message); everything but ssh works"
            )
        }
    }

    private func parseServices(_ entries: [String]) throws(CommandFailure) -> [String: HostPort] {
        var services: [String: HostPort] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, NameKind.service.accepts(parts[0]) else {
                throw .usage("--service: \"\(entry)\" is not NAME=HOST:PORT (e.g. ssh=127.0.0.1:22)", .usage)
            }
            do { services[parts[0]] = try HostPort.parse(parts[1]) } catch {
                throw .usage("--service \(parts[0]): \(error.text)", .usage)
            }
        }
        return services
    }
}

/// `tunnel dev`'s options once checked.
struct DevOptions {
    /// --dir, made absolute.
    let directory: String
    let listen: HostPort
    let services: [String: HostPort]
    let level: Logger.Level
    let format: LogFormat
}

/// The files `tunnel dev` keeps in its directory: the gateway's data directory, the node's
/// credentials (enrolled once, then reused) and the dev operator's login (made anew each run).
struct DevelopmentFiles {
    let directory: String
    let node: String

    var gateway: String { "\(directory)/gateway" }
    var nodeDirectory: String { "\(directory)/node" }
    var nodeCertificate: String { "\(nodeDirectory)/node.crt" }
    var nodeKey: String { "\(nodeDirectory)/node.key" }
    var gatewayCA: String { "\(nodeDirectory)/\(GatewayPKI.gatewayCAFile)" }
    var operatorDirectory: String { "\(directory)/operator" }
    var operatorConfig: String { "\(operatorDirectory)/\(OperatorLogin.configFile)" }

    var clientConfig: String { "\(nodeDirectory)/client.yaml" }

    /// The dev node's settings as a client config file, rewritten at each start (the private
    /// sshd's port changes), so `tunnel doctor --node --client-config` can check this node.
    func writeClientConfig(_ settings: ClientSettings) throws(CommandFailure) {
        func map(_ entries: [String: String]) -> String {
            entries.keys.sorted().map { "  \($0): \(yamlQuoted(entries[$0]!))\n" }.joined()
        }
        var text = "# Written by `tunnel dev` for its node; rewritten at every start.\n"
        text +=
            "gateway: \(yamlQuoted(settings.gateways.map(\.description).joined(separator: ",")))\nserver-name: \(yamlQuoted(settings.serverName))\n"
        text +=
            "cert: \(yamlQuoted(settings.cert))\nkey: \(yamlQuoted(settings.key))\ngateway-ca: \(yamlQuoted(settings.gatewayCA))\n"
        text += "node-name: \(yamlQuoted(node))\nservices:\n" + map(settings.services.mapValues(\.description))
        if let user = settings.shellUser { text += "shell-user: \(yamlQuoted(user))\n" }
        if !settings.logSources.isEmpty {
            text +=
                "log-root: \(yamlQuoted(settings.logRoot))\nlog-sources:\n" + map(settings.logSources.mapValues(\.text))
        }
        try makePrivateDirectory(nodeDirectory)
        _ = try writeFile(clientConfig, Array(text.utf8), 0o600, "dev node's client config")
    }

    /// Points the dev login's `tunnel ssh` at the private sshd's sandbox key and host key.
    func addSSHSettings(identity: String, knownHosts: String) throws(CommandFailure) {
        guard let handle = FileHandle(forUpdatingAtPath: operatorConfig) else {
            throw .failed("cannot update \(operatorConfig)", .localFile)
        }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data("ssh-identity: \(yamlQuoted(identity))\nssh-known-hosts: \(yamlQuoted(knownHosts))\n".utf8))
    }

    /// A single-use token for the dev node, from the running gateway.
    func token(for node: String, gateway: Gateway) throws(CommandFailure) -> JoinToken {
        let reply = gateway.administer(
            .createToken(
                TokenSpec(nodeName: node, namePrefix: nil, lifetimeSeconds: 600, uses: 1, labels: ["env": "dev"])),
            actor: "tunnel dev")
        guard case .token(let text, _) = reply, let token = try? JoinToken.parse(text) else {
            throw .failed(reply.failure?.message ?? "no token", .gatewayRequestFailed)
        }
        return token
    }

    /// Adds (or re-issues) the admin user `dev` and installs its login, so the operator commands
    /// work at once against this run's gateway address. The bundle holds a key and is deleted.
    func loginOperator(gateway: Gateway, address: HostPort) throws(CommandFailure) {
        do {
            let key = try PrivateKey.generateP256()
            let csr = String(decoding: try CertificateSigningRequest(key: key, commonName: "dev").pem(), as: UTF8.self)
            let reply = gateway.administer(
                .addUser(name: "dev", roles: ["admin"], lifetimeSeconds: 12 * 3600, csr: csr), actor: "tunnel dev")
            guard case .operatorCertificate(let certificate, let gatewayCA, _) = reply else {
                throw CommandFailure.failed(reply.failure?.message ?? "no certificate", .gatewayRequestFailed)
            }
            let bundle = OperatorBundle(
                gateway: address, serverName: "localhost", certificatePEM: certificate,
                keyPEM: String(decoding: try key.pem(), as: UTF8.self), gatewayCAPEM: gatewayCA)
            let identity = try TunnelIdentity(role: .operator, name: "dev")
            let path = "\(directory)/dev.tunnel-operator.yaml"
            _ = try writeFile(
                path, Array(bundle.render(identity: identity, notAfter: 0).utf8), 0o600, "dev operator bundle")
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try OperatorLogin.install(bundlePath: path, configDirectory: operatorDirectory)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw .failed(oneLine(error), .localFile)
        }
    }
}

extension GatewaySettings {
    static func forDevelopment(listen: HostPort, dataDir: String) -> GatewaySettings {
        GatewaySettings(
            listen: listen, dataDir: dataDir, pkiDir: "\(dataDir)/pki", adminSocket: "\(dataDir)/admin.sock",
            policy: nil,
            nodeCertificateTTL: .seconds(86_400), drainTimeout: .seconds(5),
            handshakeTimeout: .seconds(10), keepaliveInterval: GatewayKeepalive.interval, logLevel: .info)
    }
}

/// What `tunnel dev` prints: where things are and the commands to try. Each command line works
/// exactly as printed, in order, in one shell (the first sets PATH and TUNNEL_CONFIG); the
/// newcomer test (`Tests/EndToEnd/newcomer.sh`) runs them so.
struct DevGuide {
    let directory: String
    let node: String
    let gateway: String
    let services: [String: String]
    /// Why ssh goes where it goes (a private sshd), or why it is missing; nil when the target answered.
    let sshNote: String?
    let adminSocket: String

    /// `tunnel` when that name on PATH is this program; otherwise PATH gains this program's directory.
    static func pathSetting() -> String? {
        guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for entry in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(entry)/tunnel") {
            return URL(fileURLWithPath: "\(entry)/tunnel").resolvingSymlinksInPath().path == me
                ? nil : "PATH=\(shellQuoted((me as NSString).deletingLastPathComponent)):$PATH"
        }
        return "PATH=\(shellQuoted((me as NSString).deletingLastPathComponent)):$PATH"
    }

    var commands: [String] {
        let audit = shellQuoted("\(directory)/gateway/audit")
        let config = "TUNNEL_CONFIG=\(shellQuoted("\(directory)/operator/\(OperatorLogin.configFile)"))"
        var lines = ["export " + ([Self.pathSetting(), config].compactMap { $0 }).joined(separator: " ")]
        lines.append("tunnel nodes")
        lines.append("tunnel shell \(node) -- echo hello from a recorded shell")
        if services["ssh"] != nil, sshNote?.contains("everything but ssh works") != true {
            lines.append("tunnel ssh \(node) -- uname -a")
        }
        lines.append("tunnel logs \(node) \(DevSandbox.logSourceName) -n 5")
        lines.append("tunnel audit ls --dir \(audit)")
        lines.append("tunnel audit replay last --dir \(audit)")
        lines.append("tunnel audit verify \(audit)")
        return lines
    }

    var text: String {
        let offered =
            services.keys.sorted().map { "\($0) → \(services[$0]!)" } + ["shell", "logs (\(DevSandbox.logSourceName))"]
        return """
            tunnel dev: gateway on \(gateway), node "\(node)" offering \(offered.joined(separator: ", "))\
            \(sshNote.map { "\n  (ssh: \($0))" } ?? "")
            Files in \(directory); `tunnel dev` here again carries on from them. In another terminal, try:

            \(commands.map { "  " + $0 }.joined(separator: "\n"))

            Then `tunnel shell \(node)` for an interactive shell (recorded too; exit ends it), and
            `tunnel token create --admin-socket \(shellQuoted(adminSocket)) --node another-node` to enroll another node.
            Ctrl-C stops.
            """
    }
}
