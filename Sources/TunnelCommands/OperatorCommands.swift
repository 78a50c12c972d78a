import ArgumentParser
import Foundation
import Logging
import TunnelOperator
import TunnelRuntime
import TunnelText

/// The settings every operator command shares (`~/.config/tunnel/operator.yaml` by default).
struct OperatorOptions: ParsableArguments {
    static let schema = Schemas.operator

    @Option(help: "Config file (default ~/.config/tunnel/operator.yaml; env TUNNEL_CONFIG)") var config: String?
    @Option(help: schema.argumentHelp("gateway")) var gateway: String?
    @Option(help: schema.argumentHelp("server-name")) var serverName: String?
    @Option(help: schema.argumentHelp("cert")) var cert: String?
    @Option(help: schema.argumentHelp("key")) var key: String?
    @Option(help: schema.argumentHelp("gateway-ca")) var gatewayCa: String?
    @Option(help: schema.argumentHelp("ssh-known-hosts")) var sshKnownHosts: String?
    @Option(help: schema.argumentHelp("ssh-identity")) var sshIdentity: String?
    @Option(help: schema.argumentHelp("log-level")) var logLevel: String?

    var flags: [String: [String]] {
        given([
            ("gateway", gateway), ("server-name", serverName), ("cert", cert), ("key", key), ("gateway-ca", gatewayCa),
            ("ssh-known-hosts", sshKnownHosts), ("ssh-identity", sshIdentity), ("log-level", logLevel),
        ])
    }

    func settings() throws(CommandFailure) -> OperatorSettings {
        try OperatorSettings(try loadSettings(Self.schema, config: config, flags: flags))
    }

    /// The settings and a stderr logger (warnings and up unless log-level says otherwise).
    func settingsAndLogger() throws(CommandFailure) -> (OperatorSettings, Logger) {
        let settings = try settings()
        return (settings, TunnelLogging.bootstrap(level: max(settings.logLevel, .warning)))
    }

    /// The config file the ProxyCommand of `tunnel ssh` should use: the one in effect here.
    func resolvedConfigPath() -> String {
        config ?? ProcessInfo.processInfo.environment["TUNNEL_CONFIG"]
            ?? SettingsLoader.expandDefaultPath(
                Schemas.operator.defaultConfigPath, environment: ProcessInfo.processInfo.environment)
    }
}

/// Validates a node name given on the command line; `node-17.tunnel` (ssh's %h) means `node-17`.
func checkedNodeName(_ text: String) throws(CommandFailure) -> String {
    guard let name = nodeName(fromSSHHost: text) else {
        throw .usage("\"\(text)\" is not a node name (lower-case letters, digits and '-', like node-17)", .usage)
    }
    return name
}

public struct NodesCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List the nodes the gateway knows, by name.")

    @OptionGroup var options: OperatorOptions
    @OptionGroup var format: OutputOptions

    public init() {}

    public func run() throws {
        let (settings, logger) = try options.settingsAndLogger()
        let json = format.isJSON
        var listed: NodeList?
        let code = try withOperatorSession(settings, logger: logger) { session in
            // The table is printed a page at a time as the pages arrive; JSON is one document.
            session.listNodes { page in
                if listed == nil {
                    for warning in page.warnings {
                        FileHandle.standardError.write(Data("tunnel: warning: \(InertText.escape(warning))\n".utf8))
                    }
                }
                if !json { print(Self.table(page.nodes, header: listed == nil), terminator: "") }
                if listed == nil { listed = page } else { listed?.nodes += page.nodes }
            } completion: { error in
                if let error { session.fail(error) } else { session.finish(0) }
            }
        }
        if code != 0 { throw ExitCode(code) }
        guard var listed else { return }
        if !json {
            if listed.nodes.isEmpty { print("no nodes have connected to this gateway yet") }
            return
        }
        listed.next = nil
        print(String(decoding: try TunnelProtocol.encode(listed), as: UTF8.self))
    }

    /// One page of the table; `header` on the first. Each page is aligned on its own.
    static func table(_ nodes: [NodeStatus], header: Bool = true) -> String {
        guard !nodes.isEmpty else { return "" }
        let now = Date().timeIntervalSince1970
        let rows =
            (header
                ? [
                    [
                        "NAME", "STATUS", "LABELS", "SERVICES", "ADDRESS", "CONNECTED", "KEEPALIVE", "VERSION",
                        "PREVIOUS SESSION ENDED",
                    ]
                ] : [])
            + nodes.map { node in
                [
                    // In a cluster, the replica holding the session: "online@gw-2".
                    node.name, node.online ? "online\(node.replica.map { "@\($0)" } ?? "")" : "offline",
                    node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                    node.services.joined(separator: ","), node.remoteAddress,
                    node.connectedSince.map { ago(now - $0) } ?? "-",
                    node.lastKeepaliveSecondsAgo.map { ago($0) } ?? "-",
                    node.version.isEmpty ? "-" : node.version,
                    node.previousSessionEnded ?? "-",
                ]
            }
        return tableText(rows)
    }

    static func ago(_ seconds: Double) -> String {
        let whole = Int(max(0, seconds))
        if whole < 120 { return "\(whole)s ago" }
        if whole < 7200 { return "\(whole / 60)m ago" }
        return "\(whole / 3600)h ago"
    }
}

public struct ProxyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Splice stdin/stdout to a service on a node (an OpenSSH ProxyCommand).",
        discussion: "ssh -o ProxyCommand='tunnel proxy %h ssh' node-17 — or let `tunnel ssh-config` write that for you."
    )

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node (node-17, or node-17.tunnel as ssh's %h gives it)") var node: String
    @Argument(help: "The service name on the node (ssh, k3s, ...)") var service: String
    @OptionGroup var traffic: TrafficClassOption

    public init() {}

    /// How long a hung-up proxy waits for its stream to finish before it cuts it.
    static let hangupGraceMilliseconds: UInt64 = 2_000

    public func run() throws {
        let node = try checkedNodeName(node)
        let (settings, logger) = try options.settingsAndLogger()
        // By use: a person typing into ssh, or files moving (scp, rsync, sftp, git).
        let interactive = traffic.resolved(byUse: .forProxy(callerInput: TrafficClass.parentInput())).isInteractive
        let code = try withOperatorSession(settings, logger: logger) { session in
            session.proxyStandardStreams(
                node: node, service: service, interactive: interactive,
                hangupGraceMilliseconds: Self.hangupGraceMilliseconds)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

public struct ForwardCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "Listen locally; every connection becomes a stream to a service on a node.")

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node") var node: String
    @Argument(help: "The service name on the node") var service: String
    @Option(help: "Local address to listen on (port 0 picks a free one)") var listen = "127.0.0.1:0"
    @OptionGroup var traffic: TrafficClassOption

    public init() {}

    public func run() throws {
        let node = try checkedNodeName(node)
        let address: HostPort
        do { address = try HostPort.parse(listen, example: "127.0.0.1:8443", allowAnyPort: true) } catch {
            throw CommandFailure.usage("--listen: \(error.text)", .usage)
        }
        let (settings, logger) = try options.settingsAndLogger()
        var listenFailure: CommandFailure?
        let interactive = traffic.resolved(byUse: .bulk).isInteractive
        _ = try withOperatorSession(settings, logger: logger) { session in
            do {
                let forwarder = try session.forward(
                    node: node, service: service, host: address.host, port: address.port, interactive: interactive)
                print("forwarding \(forwarder.address) → \(node)/\(service); Ctrl-C stops")
                fflush(nil)
            } catch {
                listenFailure = CommandFailure("cannot listen on \(address): \(error)", code: .portInUse)
                session.finish(CommandFailure.failureExitCode)
            }
        }
        if let listenFailure { throw listenFailure }
    }
}

public struct SSHCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "Run the system ssh to a node through the gateway (host keys checked, keyed by node name).")

    @OptionGroup var options: OperatorOptions
    @Argument(help: "[USER@]NODE") var destination: String
    @Argument(parsing: .postTerminator, help: "Arguments for ssh after --, e.g. -- uname -a") var sshArguments:
        [String] = []
    @OptionGroup var traffic: TrafficClassOption

    public init() {}

    public func run() throws {
        let user = destination.contains("@") ? String(destination[..<destination.firstIndex(of: "@")!]) : nil
        let node = try checkedNodeName(String(destination.split(separator: "@").last ?? ""))
        let settings = try options.settings() // refuse bad settings here, not inside ssh's ProxyCommand
        let tunnel =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let arguments = sshInvocation(
            tunnelPath: tunnel, configPath: options.resolvedConfigPath(), settings: settings, user: user, node: node,
            trafficClass: traffic.trafficClass, extra: sshArguments)
        try execute(arguments)
    }
}

/// The ssh command line `tunnel ssh` runs: the same ProxyCommand and (by default) known_hosts
/// file as the `tunnel ssh-config` block, and the host named NODE.tunnel, so both ways share
/// host keys. The settings' paths are already expanded with $HOME (ssh would use the password
/// database's home for ~). Without a class given, the proxy picks it from ssh's stdin (a terminal:
/// interactive).
func sshInvocation(
    tunnelPath: String, configPath: String, settings: OperatorSettings, user: String?, node: String,
    trafficClass: TrafficClass? = nil, extra: [String]
) -> [String] {
    let chosen = trafficClass.map { " --class \($0.rawValue)" } ?? ""
    let proxy = "\(sshConfigQuoted(tunnelPath)) proxy --config \(sshConfigQuoted(configPath))\(chosen) %h ssh"
    return ["ssh", "-o", "ProxyCommand=\(proxy)", "-o", "UserKnownHostsFile=\(settings.sshKnownHosts)"]
        + (settings.sshIdentity.map { ["-i", $0] } ?? [])
        + (user.map { ["-l", $0] } ?? []) + ["\(node)\(sshHostSuffix)"] + extra
}

/// Replaces this process with `arguments[0]` found on PATH; returns only by throwing.
func execute(_ arguments: [String]) throws -> Never {
    var cArguments = arguments.map { strdup($0) } + [nil]
    execvp(arguments[0], &cArguments)
    throw CommandFailure.failed(
        "cannot run \(arguments[0]): \(String(cString: strerror(errno))); is it installed?", .programMissing)
}
