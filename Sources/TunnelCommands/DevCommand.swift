import ArgumentParser
import Foundation
import Logging
import TunnelClient
import TunnelGateway
import TunnelIO
import TunnelRuntime
import TunnelText
import TunnelTLS

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
        let paths = DevelopmentFiles(directory: directory, node: node)
        let logger = TunnelLogging.bootstrap(level: level)
        let gatewaySettings = GatewaySettings.forDevelopment(listen: listenAddress, dataDir: paths.gateway)
        if !FileManager.default.fileExists(atPath: "\(gatewaySettings.pkiDir)/\(GatewayPKI.nodeCACertificate)") {
            try GatewayPKI.makeDirectory(paths.gateway)
            _ = try GatewayPKI.initialize(.init(directory: gatewaySettings.pkiDir, gatewayNames: ["localhost"], gatewayIPs: ["127.0.0.1", "::1"]))
        }
        let configuration = try gatewaySettings.runtimeConfiguration()
        let store = try gatewaySettings.openStore()
        try runUntilSignalled(logger: logger) { loop throws(CommandFailure) in
            let (gateway, bound) = try startGateway(configuration, store: store, adminSocket: gatewaySettings.adminSocket, loop: loop, logger: logger)
            let gatewayAddress = HostPort(host: bound.ip, port: bound.port)
            try paths.loginOperator(gateway: gateway, address: gatewayAddress)
            var clientSettings = ClientSettings(
                gateway: gatewayAddress, serverName: "localhost",
                cert: paths.nodeCertificate, key: paths.nodeKey, gatewayCA: paths.gatewayCA, nodeName: node,
                services: services, nodeLabels: ["env": "dev"], keepaliveInterval: .seconds(15), logLevel: level)
            var edge: EdgeClient?
            var stopped = false
            func startNode() {
                do {
                    edge = try startEdgeClient(try clientSettings.runtimeConfiguration(), loop: loop, logger: logger)
                } catch {
                    logger.error("cannot start the dev node", metadata: ["error": "\(error)"])
                }
            }
            if clientSettings.isEnrolled {
                startNode()
            } else {
                // The node enrolls the way a real one does: a token, a key made here, a pinned CA.
                let token = try paths.token(for: node, gateway: gateway)
                try GatewayPKI.makeDirectory(paths.nodeDirectory)
                clientSettings.nodeName = node
                NodeCredentials.enroll(
                    loop: loop, host: gatewayAddress.host, port: gatewayAddress.port, serverName: "localhost", token: token,
                    nodeName: node, labels: ["env": "dev"], files: clientSettings.credentialFiles, logger: logger
                ) { result in
                    guard !stopped else { return }
                    switch result {
                    case .success: startNode()
                    case .failure(let failure): logger.error("dev node enrollment failed", metadata: ["error": "\(failure.message)"])
                    }
                }
            }
            print("""
                tunnel dev: gateway on \(bound), node "\(node)" offering \(services.keys.sorted().map { "\($0) → \(services[$0]!)" }.joined(separator: ", "))
                Files in \(directory). In another terminal:
                  export TUNNEL_CONFIG=\(paths.operatorConfig)
                  tunnel nodes
                  tunnel ssh \(ProcessInfo.processInfo.environment["USER"] ?? "root")@\(node) -- uname -a
                  tunnel token create --admin-socket \(gatewaySettings.adminSocket) --node another-node
                Ctrl-C stops.
                """)
            fflush(nil)
            return { stopped_ in
                stopped = true
                edge?.stop()
                gateway.stop(completion: stopped_)
            }
        }
    }

    private func parseServices(_ entries: [String]) throws(CommandFailure) -> [String: HostPort] {
        var services: [String: HostPort] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, NameKind.service.accepts(parts[0]) else {
                throw .usage("--service: \"\(entry)\" is not NAME=HOST:PORT (e.g. ssh=127.0.0.1:22)")
            }
            do { services[parts[0]] = try HostPort.parse(parts[1]) } catch { throw .usage("--service \(parts[0]): \(error.text)") }
        }
        return services
    }
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

    /// A single-use token for the dev node, from the running gateway.
    func token(for node: String, gateway: Gateway) throws(CommandFailure) -> JoinToken {
        let reply = gateway.administer(.createToken(TokenSpec(nodeName: node, namePrefix: nil, lifetimeSeconds: 600, uses: 1, labels: ["env": "dev"])), actor: "tunnel dev")
        guard let text = reply.token, let token = try? JoinToken.parse(text) else { throw .failed(reply.error ?? "no token") }
        return token
    }

    /// Adds (or re-issues) the admin user `dev` and installs its login, so the operator commands
    /// work at once against this run's gateway address. The bundle holds a key and is deleted.
    func loginOperator(gateway: Gateway, address: HostPort) throws(CommandFailure) {
        do {
            let key = try PrivateKey.generateP256()
            let csr = String(decoding: try CertificateSigningRequest(key: key, commonName: "dev").pem(), as: UTF8.self)
            let reply = gateway.administer(.addUser(name: "dev", roles: ["admin"], lifetimeSeconds: 12 * 3600, csr: csr), actor: "tunnel dev")
            guard let certificate = reply.certificate, let gatewayCA = reply.gatewayCA else { throw CommandFailure.failed(reply.error ?? "no certificate") }
            let bundle = OperatorBundle(gateway: address, serverName: "localhost", certificatePEM: certificate,
                                        keyPEM: String(decoding: try key.pem(), as: UTF8.self), gatewayCAPEM: gatewayCA)
            let identity = try TunnelIdentity(role: .operator, name: "dev")
            let path = "\(directory)/dev.tunnel-operator.yaml"
            _ = try GatewayPKI.write(path, Array(bundle.render(identity: identity, notAfter: 0).utf8), 0o600, "dev operator bundle")
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try OperatorLogin.install(bundlePath: path, configDirectory: operatorDirectory)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw .failed(oneLine(error))
        }
    }
}

extension GatewaySettings {
    static func forDevelopment(listen: HostPort, dataDir: String) -> GatewaySettings {
        GatewaySettings(listen: listen, dataDir: dataDir, pkiDir: "\(dataDir)/pki", adminSocket: "\(dataDir)/admin.sock", policy: nil,
                        nodeCertificateTTL: .seconds(86_400), drainTimeout: .seconds(5),
                        handshakeTimeout: .seconds(10), keepaliveInterval: .seconds(15), logLevel: .info)
    }
}
