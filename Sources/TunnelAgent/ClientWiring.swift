import Glibc
import Logging
import Multiplex
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelTLS
import TunnelText

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// Turns the client's checked settings into a running node client, and runs a long-lived role
// until a signal: what `tunnel client` and the slim `tunnel-client` share. Every file problem
// becomes one `CommandFailure` line naming the file and the fix.

/// Loads a certificate chain and its key; a missing, unreadable or mismatched pair is a usage error.
package func loadIdentity(certificate: String, key: String, fix: String) throws(CommandFailure) -> TLSIdentity {
    do {
        return try TLSIdentity.load(certificatePath: certificate, keyPath: key)
    } catch {
        throw .usage("\(oneLine(error)); \(fix)", .certificateMissing)
    }
}

package func loadCertificate(_ path: String, fix: String) throws(CommandFailure) -> Certificate {
    do {
        return try Certificate.fromPEM(try DurableFile.read(path: path), source: path)
    } catch {
        throw .usage("\(oneLine(error)); \(fix)", .certificateMissing)
    }
}

/// Refuses a certificate that has expired or is not valid yet, with the dates, before any dialing.
package func checkValidity(_ identity: TLSIdentity, path: String, now: Int64 = Int64(Date().timeIntervalSince1970))
    throws(CommandFailure)
{
    guard let leaf = identity.chain.first else { throw .usage("\(path) holds no certificate", .certificateMissing) }
    if now >= leaf.notAfter {
        throw .usage(
            "\(path) expired at \(isoDate(leaf.notAfter)); get a new one (operators: `tunnel renew` before expiry, or a new bundle from an admin)",
            .certificateExpired)
    }
    if now < leaf.notBefore {
        throw .usage(
            "\(path) is valid only from \(isoDate(leaf.notBefore)); is this machine's clock right? (now \(isoDate(now)))",
            .clockSkew)
    }
}

/// Runs a long-lived role on a new loop until SIGTERM or SIGINT. `start` sets the role up on the
/// loop and returns how to stop it; that stop calls its argument once everything has closed, so
/// the loop runs out of handles and this returns.
package func runUntilSignalled(
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

/// Gives back the pages only starting touched (`StartupPages`), once a long-lived role serves:
/// the agent each time its session comes up, the gateway once it listens.
package func releaseStartupPages(logger: Logger) {
    let advised = StartupPages.release()
    logger.debug("start-up pages released", metadata: ["mappings.kib": "\(advised >> 10)"])
}

/// Starts a node client on `loop`. Network and gateway failures never end it: it retries until
/// it is stopped.
package func startEdgeClient(_ configuration: EdgeClientConfiguration, loop: EventLoop, logger: Logger)
    throws(CommandFailure) -> EdgeClient
{
    do {
        let client = try EdgeClient(loop: loop, configuration: configuration, logger: logger)
        client.start()
        return client
    } catch {
        throw .failed("cannot start the node client: \(oneLine(error))", .systemResource)
    }
}

extension ClientSettings {
    package var credentialFiles: NodeCredentialFiles {
        NodeCredentialFiles(certificate: cert, key: key, gatewayCA: gatewayCA)
    }

    /// The certificate file exists: enrollment completed once (it is written last).
    package var isEnrolled: Bool { FileManager.default.fileExists(atPath: cert) }

    /// Enrolls with a join token before the client starts. A refusal (used, expired or unknown
    /// token; a gateway that does not match the token's CA pin) ends the command with the
    /// gateway's sentence; network failures are retried with backoff, as the client itself does.
    package func enroll(token text: String, logger: Logger) throws(CommandFailure) {
        let token: JoinToken
        do { token = try JoinToken.parse(text) } catch { throw .usage("--token: \(error.message)", .usage) }
        for path in [cert, key, gatewayCA] {
            try makePrivateDirectory(directoryPart(of: path))
        }
        let loop: EventLoop
        do { loop = try EventLoop() } catch { throw .failed("cannot start: \(error)", .systemResource) }
        var outcome: Result<TLSIdentity, FleetFailure>?
        TokenEnrollment(
            loop: loop, host: gateway.host, port: gateway.port, serverName: serverName, token: token,
            nodeName: nodeName, labels: nodeLabels, files: credentialFiles, logger: logger
        ) { outcome = $0 }
        loop.run()
        switch outcome {
        case .success(let identity):
            let subject = (try? identity.chain[0].tunnelIdentity().description) ?? "?"
            logger.notice(
                "enrolled",
                metadata: [
                    "identity": "\(subject)", "certificate.not_after": "\(isoDate(identity.chain[0].notAfter))",
                    "cert": "\(cert)",
                ])
        case .failure(let failure):
            throw .failed("enrollment refused: \(failure.message)", .enrollmentRefused)
        case nil:
            throw .failed("enrollment did not finish", .enrollmentRefused)
        }
    }

    package func runtimeConfiguration() throws(CommandFailure) -> EdgeClientConfiguration {
        let fix =
            "enroll this node with a join token: tunnel client --token TOKEN (from `tunnel token create` on the gateway)"
        // An expired certificate is fine: the client re-enrolls with it.
        let identity = try loadIdentity(certificate: cert, key: key, fix: fix)
        guard (try? identity.chain[0].tunnelIdentity().role) == .node else {
            throw .usage("\(cert) is not a node certificate; \(fix)", .certificateMissing)
        }
        let gatewayCA = try loadCertificate(self.gatewayCA, fix: fix)
        var endpoint = GatewayEndpoint(
            host: gateway.host, port: gateway.port, serverName: serverName, identity: identity, gatewayCA: gatewayCA)
        endpoint.replicas = gateways.map { ($0.host, $0.port) }
        var configuration = EdgeClientConfiguration(
            gateway: endpoint,
            services: services.mapValues { LocalService(host: $0.host, port: $0.port) },
            labels: nodeLabels, credentialFiles: credentialFiles)
        configuration.session.keepaliveInterval = keepaliveInterval
        configuration.softwareVersion = VersionInfo.current.reported
        if let shellUser {
            guard services[ShellStream.serviceName] == nil else {
                throw .usage(
                    "services: \"\(ShellStream.serviceName)\" is the built-in shell service (shell-user); give that service another name",
                    .configInvalid)
            }
            do {
                configuration.builtInServices[ShellStream.serviceName] = try ShellService(user: shellUser)
            } catch {
                throw .usage("shell-user: \(error.reason)", .configInvalid)
            }
        }
        if !logSources.isEmpty {
            guard services[LogService.serviceName] == nil else {
                throw .usage(
                    "services: \"\(LogService.serviceName)\" is the built-in log service (log-sources); give that service another name",
                    .configInvalid)
            }
            configuration.builtInServices[LogService.serviceName] = LogService(sources: logSources, root: logRoot)
        }
        if let kubernetes {
            guard services[KubernetesService.serviceName] == nil else {
                throw .usage(
                    "services: \"\(KubernetesService.serviceName)\" is the built-in Kubernetes service (kubernetes); give that service another name",
                    .configInvalid)
            }
            configuration.kubernetes = try KubernetesKubeconfig.upstream(path: kubernetes)
        }
        return configuration
    }
}
