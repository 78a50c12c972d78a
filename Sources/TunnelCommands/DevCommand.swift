import ArgumentParser
import Foundation
import Logging
import TunnelClient
import TunnelGateway
import TunnelIO

/// `tunnel dev`: the whole thing on one machine with embedded defaults, for a first look and
/// for demos. It makes a development PKI in a local directory (once), then runs a gateway and a
/// node client in one process and prints what to try.
public struct DevCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a gateway with a development CA and a local node client in one process.")

    @Option(help: "Directory for the development CA, certificates and operator config") var dir = "tunnel-dev"
    @Option(help: "Where the gateway listens") var listen = "127.0.0.1:7443"
    @Option(help: "Name of the local node") var node = "dev-node"
    @Option(help: "A service the node offers, NAME=HOST:PORT; repeatable") var service: [String] = ["ssh=127.0.0.1:22"]
    @Option(help: "Log level") var logLevel = "info"

    public init() {}

    public func run() throws {
        let directory = (dir as NSString).isAbsolutePath ? dir : FileManager.default.currentDirectoryPath + "/" + dir
        let listenAddress: HostPort
        do { listenAddress = try HostPort.parse(listen) } catch { throw CommandFailure.usage("--listen: \(error.text)") }
        let services = try parseServices(service)
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw CommandFailure.usage("--log-level: \"\(logLevel)\" is not one of \(Schemas.logLevels.joined(separator: ", "))")
        }
        let paths = try DevelopmentFiles.prepare(directory: directory, node: node, gateway: listenAddress)
        let logger = TunnelLogging.bootstrap(level: level)

        let pki = GatewaySettings.forDevelopment(listen: listenAddress, pkiDir: paths.pki)
        let configuration = try pki.runtimeConfiguration()
        try runUntilSignalled(logger: logger) { loop throws(CommandFailure) in
            let (gateway, bound) = try startGateway(configuration, loop: loop, logger: logger)
            let clientSettings = ClientSettings(
                gateway: HostPort(host: bound.ip, port: bound.port), serverName: "localhost",
                cert: paths.nodeCertificate, key: paths.nodeKey, gatewayCA: paths.gatewayCA,
                services: services, nodeLabels: ["env": "dev"], keepaliveInterval: .seconds(15), logLevel: level)
            let edge = try startEdgeClient(try clientSettings.runtimeConfiguration(), loop: loop, logger: logger)
            print("""
                tunnel dev: gateway on \(bound), node "\(node)" offering \(services.keys.sorted().map { "\($0) → \(services[$0]!)" }.joined(separator: ", "))
                Files in \(directory). In another terminal:
                  export TUNNEL_CONFIG=\(paths.operatorConfig)
                  tunnel nodes
                  tunnel ssh \(ProcessInfo.processInfo.environment["USER"] ?? "root")@\(node) -- uname -a
                Ctrl-C stops.
                """)
            fflush(nil)
            return { stopped in
                edge.stop()
                gateway.stop(completion: stopped)
            }
        }
    }

    private func parseServices(_ entries: [String]) throws(CommandFailure) -> [String: HostPort] {
        var services: [String: HostPort] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Names.isDNSLabel(parts[0]) else {
                throw .usage("--service: \"\(entry)\" is not NAME=HOST:PORT (e.g. ssh=127.0.0.1:22)")
            }
            do { services[parts[0]] = try HostPort.parse(parts[1]) } catch { throw .usage("--service \(parts[0]): \(error.text)") }
        }
        return services
    }
}

/// The files `tunnel dev` keeps in its directory, made on first use and reused afterwards.
enum DevelopmentFiles {
    struct Paths {
        let pki: String
        let nodeCertificate: String
        let nodeKey: String
        let gatewayCA: String
        let operatorConfig: String
    }

    static func prepare(directory: String, node: String, gateway: HostPort) throws(CommandFailure) -> Paths {
        let pki = "\(directory)/pki"
        let nodeDirectory = "\(directory)/node"
        let operatorDirectory = "\(directory)/operator"
        let paths = Paths(
            pki: pki, nodeCertificate: "\(nodeDirectory)/\(node).crt", nodeKey: "\(nodeDirectory)/\(node).key",
            gatewayCA: "\(nodeDirectory)/\(OfflinePKI.gatewayCAFile)", operatorConfig: "\(operatorDirectory)/operator.yaml")
        let files = FileManager.default
        if !files.fileExists(atPath: "\(pki)/\(OfflinePKI.nodeCACertificate)") {
            _ = try OfflinePKI.initialize(.init(directory: pki, gatewayNames: ["localhost"], gatewayIPs: ["127.0.0.1", "::1"]))
        }
        if !files.fileExists(atPath: paths.nodeCertificate) {
            _ = try OfflinePKI.issueNode(name: node, caDirectory: pki, outputDirectory: nodeDirectory)
        }
        // The operator login is made anew each time, so it always names this run's gateway address;
        // the bundle holds a private key and goes once it is installed.
        let bundle = "\(directory)/dev.tunnel-operator.yaml"
        _ = try OfflinePKI.issueOperatorBundle(
            name: "dev", caDirectory: pki, gateway: gateway, serverName: "localhost", outputPath: bundle)
        _ = try OperatorLogin.install(bundlePath: bundle, configDirectory: operatorDirectory)
        try? files.removeItem(atPath: bundle)
        return paths
    }
}

extension GatewaySettings {
    static func forDevelopment(listen: HostPort, pkiDir: String) -> GatewaySettings {
        GatewaySettings(listen: listen, dataDir: pkiDir, pkiDir: pkiDir, drainTimeout: .seconds(5),
                        handshakeTimeout: .seconds(10), keepaliveInterval: .seconds(15), logLevel: .info)
    }
}
