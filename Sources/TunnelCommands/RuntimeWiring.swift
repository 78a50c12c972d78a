import Foundation
import Logging
import TunnelClient
import TunnelGateway
import TunnelRuntime
import TunnelState
import TunnelTLS
import TunnelText

// Turns checked settings into running gateways, clients and operator connections. Every file
// problem becomes one `CommandFailure` line naming the file and the fix.

extension GatewaySettings {
    /// The gateway's runtime configuration. On first start it creates its PKI (node CA, operator
    /// CA, gateway certificate) in pki-dir; afterwards it loads and checks it.
    func runtimeConfiguration() throws(CommandFailure) -> GatewayConfiguration {
        let fix = "restore pki-dir from a backup, or move it aside to start a new fleet"
        if !GatewayPKI.isPresent(directory: pkiDir) {
            try makePrivateDirectory(dataDir)
            _ = try CADirectory.create(.init(directory: pkiDir))
        }
        let identity = try loadIdentity(
            certificate: "\(pkiDir)/\(GatewayPKI.gatewayCertificate)", key: "\(pkiDir)/\(GatewayPKI.gatewayKey)",
            fix: fix)
        try checkValidity(identity, path: "\(pkiDir)/\(GatewayPKI.gatewayCertificate)")
        var configuration = GatewayConfiguration(
            listenHost: listen.host, listenPort: listen.port, identity: identity,
            nodeCA: try CADirectory.loadCA(.node, directory: pkiDir),
            operatorCA: try CADirectory.loadCA(.operator, directory: pkiDir))
        configuration.drainTimeout = drainTimeout
        configuration.handshakeTimeout = handshakeTimeout
        guard (0...Self.maximumHandshakeThreads).contains(handshakeThreads) else {
            throw .usage(
                "handshake-threads must be 0 to \(Self.maximumHandshakeThreads) (got \(handshakeThreads))",
                .configInvalid)
        }
        configuration.handshakeThreads = handshakeThreads
        try AdmissionSettings.check(self, nodeCapacity: Int(configuration.session.maxConcurrentStreams))
        configuration.admission = admission
        configuration.session.keepaliveInterval = keepaliveInterval
        configuration.nodeCertificateLifetime = Int64(nodeCertificateTTL.components.seconds)
        configuration.reenrollWindow = Int64(reenrollWindow.components.seconds)
        configuration.policyPath = policy
        configuration.auditDirectory = "\(dataDir)/audit"
        configuration.auditKeyDirectory = "\(dataDir)/audit-key"
        configuration.sessionTicketKeysPath = sessionResumption ? "\(dataDir)/session-ticket-keys" : nil
        configuration.softwareVersion = VersionInfo.current.reported
        configuration.replica = try replicaIdentity()
        return configuration
    }

    /// The fleet store: the shared PostgreSQL database given with `store`, else fleet.db in data-dir.
    func openStore() throws(CommandFailure) -> FleetStore {
        try makePrivateDirectory(dataDir)
        if let store, PostgresFleetStore.urlHoldsPassword(store) {
            throw .usage(
                "--store holds a password, which would show in process lists and logs; remove it from the URL and give it in PGPASSWORD or a ~/.pgpass file (PGPASSFILE)",
                .configInvalid)
        }
        do {
            if let store {
                return try PostgresFleetStore(url: store)
            }
            return try SQLiteFleetStore(path: "\(dataDir)/fleet.db")
        } catch {
            throw .failed(error.message, store == nil ? .localFile : .systemResource)
        }
    }
}

/// Logs the version a gateway starts with and runs `launch` (`Gateway.launch` on the command's
/// loop), turning its failure into one clear line: a port already in use names `--listen`.
func startGateway<Launched>(
    _ configuration: GatewayConfiguration, logger: Logger,
    _ launch: () throws(GatewayLaunchFailure) -> Launched
) throws(CommandFailure) -> Launched {
    let version = VersionInfo.current
    logger.info(
        "starting \(version.line)",
        metadata: [
            "version": "\(version.version)", "commit": "\(version.commit)", "swift": "\(version.swift)",
            "openssl": "\(version.openssl)", "libuv": "\(version.libuv)",
        ])
    do {
        return try launch()
    } catch {
        switch error {
        case .cannotStart(let error):
            throw .failed("cannot start the gateway: \(oneLine(error))", .systemResource)
        case .cannotListen(let error):
            throw .failed(
                "cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error.message); pick another --listen",
                .portInUse)
        case .adminSocket(let path, let error):
            throw .failed(
                "cannot open the admin socket \(path): \(error); give each gateway its own --admin-socket",
                .localFile)
        }
    }
}

extension OperatorSettings {
    func endpoint() throws(CommandFailure) -> GatewayEndpoint {
        let fix = "run `tunnel login BUNDLE` first"
        let identity = try loadIdentity(certificate: cert, key: key, fix: fix)
        try checkValidity(identity, path: cert)
        let gatewayCA = try loadCertificate(self.gatewayCA, fix: fix)
        return GatewayEndpoint(
            host: gateway.host, port: gateway.port, serverName: serverName, identity: identity, gatewayCA: gatewayCA)
    }
}
