import Foundation
import Logging
import Multiplex
import TunnelClient
import TunnelGateway
import TunnelIO
import TunnelRuntime
import TunnelTLS

// Turns checked settings into running gateways, clients and operator connections. Every file
// problem becomes one `CommandFailure` line naming the file and the fix.

/// Loads a certificate chain and its key; a missing, unreadable or mismatched pair is a usage error.
func loadIdentity(certificate: String, key: String, fix: String) throws(CommandFailure) -> TLSIdentity {
    do {
        return try TLSIdentity.load(certificatePath: certificate, keyPath: key)
    } catch {
        throw .usage("\(oneLine(error)); \(fix)")
    }
}

func loadCertificate(_ path: String, fix: String) throws(CommandFailure) -> Certificate {
    do {
        return try Certificate.fromPEM(try DurableFile.read(path: path), source: path)
    } catch {
        throw .usage("\(oneLine(error)); \(fix)")
    }
}

/// Refuses a certificate that has expired or is not valid yet, with the dates, before any dialing.
func checkValidity(_ identity: TLSIdentity, path: String, now: Int64 = Int64(Date().timeIntervalSince1970)) throws(CommandFailure) {
    guard let leaf = identity.chain.first else { throw .usage("\(path) holds no certificate") }
    if now >= leaf.notAfter {
        throw .usage("\(path) expired at \(isoDate(leaf.notAfter)); issue a new certificate (tunnel ca issue)")
    }
    if now < leaf.notBefore {
        throw .usage("\(path) is valid only from \(isoDate(leaf.notBefore)); is this machine's clock right? (now \(isoDate(now)))")
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
    do { loop = try EventLoop() } catch { throw .failed("cannot start: \(error)") }
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
        throw .failed("cannot start the node client: \(oneLine(error))")
    }
}

extension GatewaySettings {
    /// The gateway's runtime configuration from its PKI directory.
    func runtimeConfiguration() throws(CommandFailure) -> GatewayConfiguration {
        let fix = "create it with `tunnel ca init --dir \(pkiDir)` or point pki-dir at the right directory"
        let identity = try loadIdentity(
            certificate: "\(pkiDir)/\(OfflinePKI.gatewayCertificate)", key: "\(pkiDir)/\(OfflinePKI.gatewayKey)", fix: fix)
        try checkValidity(identity, path: "\(pkiDir)/\(OfflinePKI.gatewayCertificate)")
        var configuration = GatewayConfiguration(
            listenHost: listen.host, listenPort: listen.port, identity: identity,
            nodeCA: try loadCertificate("\(pkiDir)/\(OfflinePKI.nodeCACertificate)", fix: fix),
            operatorCA: try loadCertificate("\(pkiDir)/\(OfflinePKI.operatorCACertificate)", fix: fix))
        configuration.drainTimeout = drainTimeout
        configuration.handshakeTimeout = handshakeTimeout
        configuration.session.keepaliveInterval = keepaliveInterval
        return configuration
    }
}

/// Starts a gateway on `loop`; a port already in use is one clear line.
func startGateway(_ configuration: GatewayConfiguration, loop: EventLoop, logger: Logger) throws(CommandFailure) -> (Gateway, SocketAddress) {
    do {
        let gateway = try Gateway(loop: loop, configuration: configuration, logger: logger)
        do {
            return (gateway, try gateway.start())
        } catch {
            throw CommandFailure.failed("cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error.message); pick another --listen")
        }
    } catch let failure as CommandFailure {
        throw failure
    } catch {
        throw .failed("cannot start the gateway: \(oneLine(error))")
    }
}

extension ClientSettings {
    func runtimeConfiguration() throws(CommandFailure) -> EdgeClientConfiguration {
        let fix = "issue one with `tunnel ca issue node NAME` and set cert/key in the client config"
        let identity = try loadIdentity(certificate: cert, key: key, fix: fix)
        try checkValidity(identity, path: cert)
        guard (try? identity.chain[0].tunnelIdentity().role) == .node else {
            throw .usage("\(cert) is not a node certificate; the client needs one from `tunnel ca issue node NAME`")
        }
        let gatewayCA = try loadCertificate(self.gatewayCA, fix: "copy gateway-ca.crt from `tunnel ca issue node` to the node")
        var configuration = EdgeClientConfiguration(
            gateway: GatewayEndpoint(host: gateway.host, port: gateway.port, serverName: serverName, identity: identity, gatewayCA: gatewayCA),
            services: services.mapValues { LocalService(host: $0.host, port: $0.port) },
            labels: nodeLabels)
        configuration.session.keepaliveInterval = keepaliveInterval
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
        throw .failed("cannot start: \(oneLine(error))")
    }
    var exitCode: Int32?
    var failure: String?
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
                if exitCode == nil { failure = "the gateway closed the connection: \(reason.reason)" }
                finish(CommandFailure.failureExitCode)
            }
            teardown = body(loop, client, connection, finish)
        case .failure(let error):
            failure = error.message
            finish(CommandFailure.failureExitCode)
        }
    }
    loop.run()
    if let failure { throw .failed(failure) }
    return exitCode ?? CommandFailure.failureExitCode
}
