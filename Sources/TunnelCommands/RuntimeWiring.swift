import Foundation
import Logging
import Multiplex
import TunnelClient
import TunnelGateway
import TunnelIO
import TunnelRuntime
import TunnelState
import TunnelTLS

// Turns checked settings into running gateways, clients and operator connections. Every file
// problem becomes one `CommandFailure` line naming the file and the fix.

/// Loads a certificate chain and its key; a missing, unreadable or mismatched pair is a usage error.
func loadIdentity(certificate: String, key: String, fix: String) throws(CommandFailure) -> TLSIdentity {
    do {
        return try TLSIdentity.load(certificatePath: certificate, keyPath: key)
    } catch {
        throw .usage("\(oneLine(error)); \(fix)", .certificateMissing)
    }
}

func loadCertificate(_ path: String, fix: String) throws(CommandFailure) -> Certificate {
    do {
        return try Certificate.fromPEM(try DurableFile.read(path: path), source: path)
    } catch {
        throw .usage("\(oneLine(error)); \(fix)", .certificateMissing)
    }
}

/// Refuses a certificate that has expired or is not valid yet, with the dates, before any dialing.
func checkValidity(_ identity: TLSIdentity, path: String, now: Int64 = Int64(Date().timeIntervalSince1970)) throws(CommandFailure) {
    guard let leaf = identity.chain.first else { throw .usage("\(path) holds no certificate", .certificateMissing) }
    if now >= leaf.notAfter {
        throw .usage("\(path) expired at \(isoDate(leaf.notAfter)); get a new one (operators: `tunnel renew` before expiry, or a new bundle from an admin)", .certificateExpired)
    }
    if now < leaf.notBefore {
        throw .usage("\(path) is valid only from \(isoDate(leaf.notBefore)); is this machine's clock right? (now \(isoDate(now)))", .clockSkew)
    }
}

/// SIGTERM and SIGINT handling for a long-running command: the first signal calls `onStop`
/// (drain, close); a second one exits at once (an operator who presses Ctrl-C twice means it).
/// Close it when the command's work is done, so the loop can run out of handles and return.
final class StopSignals {
    private var watchers: [SignalWatcher] = []
    private var stopping = false

    init(loop: EventLoop, logger: Logger, onStop: @escaping () -> Void) {
        for signal in [Signal.terminate, Signal.interrupt] {
            if let watcher = try? SignalWatcher(loop: loop, signal: signal, { [unowned self] signal in
                if stopping {
                    logger.warning("second signal; exiting without draining")
                    exit(CommandFailure.failureExitCode)
                }
                stopping = true
                logger.info("signal received; stopping", metadata: ["signal": "\(signal.number)"])
                onStop()
            }) {
                watchers.append(watcher)
            }
        }
    }

    func close() {
        for watcher in watchers { watcher.close() }
        watchers.removeAll()
    }
}

/// Runs a long-lived role on a new loop until SIGTERM or SIGINT. `start` sets the role up on the
/// loop and returns how to stop it; that stop calls its argument once everything has closed, so
/// the loop runs out of handles and this returns.
func runUntilSignalled(
    logger: Logger, _ start: (EventLoop) throws(CommandFailure) -> (_ stopped: @escaping () -> Void) -> Void
) throws(CommandFailure) {
    let loop: EventLoop
    do { loop = try EventLoop() } catch { throw .failed("cannot start: \(error)", .systemResource) }
    // Signals are watched before the role starts: one that arrives while it starts up (after it
    // printed that it is ready, say) is then handled once the loop runs, not fatal by default.
    var stop: ((@escaping () -> Void) -> Void)?
    var signals: StopSignals?
    signals = StopSignals(loop: loop, logger: logger) {
        guard let stop else { return signals?.close() ?? () }
        stop { signals?.close() }
    }
    do {
        stop = try start(loop)
    } catch {
        signals?.close()
        throw error
    }
    loop.run()
}

/// Starts a node client on `loop`. Network and gateway failures never end it: it retries until
/// it is stopped.
func startEdgeClient(_ configuration: EdgeClientConfiguration, loop: EventLoop, logger: Logger) throws(CommandFailure) -> EdgeClient {
    do {
        let client = try EdgeClient(loop: loop, configuration: configuration, logger: logger)
        client.start()
        return client
    } catch {
        throw .failed("cannot start the node client: \(oneLine(error))", .systemResource)
    }
}

extension GatewaySettings {
    /// The gateway's runtime configuration. On first start it creates its PKI (node CA, operator
    /// CA, gateway certificate) in pki-dir; afterwards it loads and checks it.
    func runtimeConfiguration() throws(CommandFailure) -> GatewayConfiguration {
        let fix = "restore pki-dir from a backup, or move it aside to start a new fleet"
        if !FileManager.default.fileExists(atPath: "\(pkiDir)/\(GatewayPKI.nodeCACertificate)") {
            try GatewayPKI.makeDirectory(dataDir)
            _ = try GatewayPKI.initialize(.init(directory: pkiDir))
        }
        let identity = try loadIdentity(
            certificate: "\(pkiDir)/\(GatewayPKI.gatewayCertificate)", key: "\(pkiDir)/\(GatewayPKI.gatewayKey)", fix: fix)
        try checkValidity(identity, path: "\(pkiDir)/\(GatewayPKI.gatewayCertificate)")
        var configuration = GatewayConfiguration(
            listenHost: listen.host, listenPort: listen.port, identity: identity,
            nodeCA: try GatewayPKI.loadCA(.node, directory: pkiDir), operatorCA: try GatewayPKI.loadCA(.operator, directory: pkiDir))
        configuration.drainTimeout = drainTimeout
        configuration.handshakeTimeout = handshakeTimeout
        try AdmissionSettings.check(admission, nodeCapacity: Int(configuration.session.maxConcurrentStreams))
        configuration.admission = admission
        configuration.session.keepaliveInterval = keepaliveInterval
        configuration.nodeCertificateLifetime = Int64(nodeCertificateTTL.components.seconds)
        configuration.reenrollWindow = Int64(reenrollWindow.components.seconds)
        configuration.policyPath = policy
        configuration.auditDirectory = "\(dataDir)/audit"
        configuration.auditKeyDirectory = "\(dataDir)/audit-key"
        configuration.softwareVersion = VersionInfo.current.reported
        configuration.replica = try replicaIdentity()
        return configuration
    }

    /// The fleet store: the shared PostgreSQL database given with `store`, else fleet.db in data-dir.
    func openStore() throws(CommandFailure) -> FleetStore {
        try GatewayPKI.makeDirectory(dataDir)
        if let store, PostgresFleetStore.urlHoldsPassword(store) {
            throw .usage("--store holds a password, which would show in process lists and logs; remove it from the URL and give it in PGPASSWORD or a ~/.pgpass file (PGPASSFILE)", .configInvalid)
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

/// Starts a gateway on `loop` with its admin socket; a port already in use is one clear line.
func startGateway(
    _ configuration: GatewayConfiguration, store: FleetStore, adminSocket: String?, loop: EventLoop, logger: Logger
) throws(CommandFailure) -> (Gateway, SocketAddress) {
    let version = VersionInfo.current
    logger.info("starting \(version.line)", metadata: [
        "version": "\(version.version)", "commit": "\(version.commit)", "swift": "\(version.swift)",
        "openssl": "\(version.openssl)", "libuv": "\(version.libuv)",
    ])
    let gateway: Gateway
    do {
        gateway = try Gateway(loop: loop, configuration: configuration, store: store, logger: logger)
    } catch {
        throw .failed("cannot start the gateway: \(oneLine(error))", .systemResource)
    }
    let bound: SocketAddress
    do {
        bound = try gateway.start()
    } catch {
        throw .failed("cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error.message); pick another --listen", .portInUse)
    }
    if let adminSocket {
        do {
            try gateway.startAdminSocket(path: adminSocket)
        } catch {
            throw .failed("cannot open the admin socket \(adminSocket): \(error); is another gateway using this data-dir?", .localFile)
        }
    }
    return (gateway, bound)
}

extension ClientSettings {
    var credentialFiles: NodeCredentialFiles {
        NodeCredentialFiles(certificate: cert, key: key, gatewayCA: gatewayCA)
    }

    /// The certificate file exists: enrollment completed once (it is written last).
    var isEnrolled: Bool { FileManager.default.fileExists(atPath: cert) }

    /// Enrolls with a join token before the client starts. A refusal (used, expired or unknown
    /// token; a gateway that does not match the token's CA pin) ends the command with the
    /// gateway's sentence; network failures are retried with backoff, as the client itself does.
    func enroll(token text: String, logger: Logger) throws(CommandFailure) {
        let token: JoinToken
        do { token = try JoinToken.parse(text) } catch { throw .usage("--token: \(error.message)", .usage) }
        for path in [cert, key, gatewayCA] {
            try GatewayPKI.makeDirectory((path as NSString).deletingLastPathComponent)
        }
        let loop: EventLoop
        do { loop = try EventLoop() } catch { throw .failed("cannot start: \(error)", .systemResource) }
        var outcome: Result<TLSIdentity, FleetFailure>?
        var backoff = Backoff()
        let retryTimer = LoopTimer(loop: loop)
        func attempt() {
            NodeCredentials.enroll(
                loop: loop, host: gateway.host, port: gateway.port, serverName: serverName, token: token, nodeName: nodeName,
                labels: nodeLabels, files: credentialFiles, logger: logger
            ) { result in
                if case .failure(let failure) = result, !failure.isFinal {
                    let delay = backoff.nextDelay()
                    logger.warning("enrollment failed; retrying", metadata: ["reason": "\(failure.message)", "retry.in_s": "\(delay)"])
                    retryTimer.start(after: delay.wholeMilliseconds) { attempt() }
                    return
                }
                outcome = result
                retryTimer.close()
            }
        }
        attempt()
        loop.run()
        switch outcome {
        case .success(let identity):
            let subject = (try? identity.chain[0].tunnelIdentity().description) ?? "?"
            logger.notice("enrolled", metadata: ["identity": "\(subject)", "certificate.not_after": "\(isoDate(identity.chain[0].notAfter))", "cert": "\(cert)"])
        case .failure(let failure):
            throw .failed("enrollment refused: \(failure.message)", .enrollmentRefused)
        case nil:
            throw .failed("enrollment did not finish", .enrollmentRefused)
        }
    }

    func runtimeConfiguration() throws(CommandFailure) -> EdgeClientConfiguration {
        let fix = "enroll this node with a join token: tunnel client --token TOKEN (from `tunnel token create` on the gateway)"
        // An expired certificate is fine: the client re-enrolls with it.
        let identity = try loadIdentity(certificate: cert, key: key, fix: fix)
        guard (try? identity.chain[0].tunnelIdentity().role) == .node else {
            throw .usage("\(cert) is not a node certificate; \(fix)", .certificateMissing)
        }
        let gatewayCA = try loadCertificate(self.gatewayCA, fix: fix)
        var endpoint = GatewayEndpoint(host: gateway.host, port: gateway.port, serverName: serverName, identity: identity, gatewayCA: gatewayCA)
        endpoint.replicas = gateways.map { ($0.host, $0.port) }
        var configuration = EdgeClientConfiguration(
            gateway: endpoint,
            services: services.mapValues { LocalService(host: $0.host, port: $0.port) },
            labels: nodeLabels, credentialFiles: credentialFiles)
        configuration.session.keepaliveInterval = keepaliveInterval
        configuration.softwareVersion = VersionInfo.current.reported
        if let shellUser {
            guard services[ShellStream.serviceName] == nil else {
                throw .usage("services: \"\(ShellStream.serviceName)\" is the built-in shell service (shell-user); give that service another name", .configInvalid)
            }
            do {
                configuration.builtInServices[ShellStream.serviceName] = try ShellService(user: shellUser)
            } catch {
                throw .usage("shell-user: \(error.reason)", .configInvalid)
            }
        }
        if !logSources.isEmpty {
            guard services[LogService.serviceName] == nil else {
                throw .usage("services: \"\(LogService.serviceName)\" is the built-in log service (log-sources); give that service another name", .configInvalid)
            }
            configuration.builtInServices[LogService.serviceName] = LogService(sources: logSources, root: logRoot)
        }
        if let kubernetes {
            guard services[KubernetesService.serviceName] == nil else {
                throw .usage("services: \"\(KubernetesService.serviceName)\" is the built-in Kubernetes service (kubernetes); give that service another name", .configInvalid)
            }
            configuration.kubernetes = try KubernetesKubeconfig.upstream(path: kubernetes)
        }
        return configuration
    }
}

extension OperatorSettings {
    func endpoint() throws(CommandFailure) -> GatewayEndpoint {
        let fix = "run `tunnel login BUNDLE` first"
        let identity = try loadIdentity(certificate: cert, key: key, fix: fix)
        try checkValidity(identity, path: cert)
        let gatewayCA = try loadCertificate(self.gatewayCA, fix: fix)
        return GatewayEndpoint(host: gateway.host, port: gateway.port, serverName: serverName, identity: identity, gatewayCA: gatewayCA)
    }
}

/// Connects to the gateway as an operator, runs `body` once connected, and returns the exit code
/// `body` finishes with. Connection failures print one line and return 1. `body` may return a
/// teardown (closing its listeners, say) that runs however the command ends: finished, signal,
/// or the gateway going away.
func withOperatorConnection(
    _ settings: OperatorSettings, logger: Logger,
    _ body: @escaping (EventLoop, OperatorClient, MuxConnection, _ finish: @escaping (Int32) -> Void) -> (() -> Void)?
) throws(CommandFailure) -> Int32 {
    let endpoint = try settings.endpoint()
    let loop: EventLoop
    let client: OperatorClient
    do {
        loop = try EventLoop()
        client = try OperatorClient(loop: loop, endpoint: endpoint, logger: logger)
    } catch {
        throw .failed("cannot start: \(oneLine(error))", .systemResource)
    }
    var exitCode: Int32?
    var failure: CommandFailure?
    var signals: StopSignals?
    var teardown: (() -> Void)?
    let finish: (Int32) -> Void = { code in
        guard exitCode == nil else { return }
        exitCode = code
        teardown?()
        client.close()
        signals?.close()
    }
    signals = StopSignals(loop: loop, logger: logger) { finish(130) }
    client.connect { result in
        switch result {
        case .success(let connection):
            client.onClosed = { reason in
                if exitCode == nil { failure = CommandFailure(OperatorFailure.streamEnded(reason, "the gateway closed the connection: \(reason.reason)")) }
                finish(CommandFailure.failureExitCode)
            }
            teardown = body(loop, client, connection, finish)
        case .failure(let error):
            failure = CommandFailure(error)
            finish(CommandFailure.failureExitCode)
        }
    }
    loop.run()
    if let failure { throw failure }
    return exitCode ?? CommandFailure.failureExitCode
}
