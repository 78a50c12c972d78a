import Logging
import Multiplex
import TunnelEdgeCore
import TunnelIO
import TunnelMetrics
import TunnelRuntime
import TunnelTLS
import TunnelText

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The edge side: dials out to the gateway, keeps one session up for as long as it runs,
/// reconnecting with full-jitter backoff after any network or gateway failure, and splices each
/// stream the gateway opens to the named local service. It never exits on a network error.
///
/// It also keeps its identity alive: it renews its certificate over the session at two thirds of
/// its life, re-enrolls with its expired certificate after a long power-off, and, when the
/// gateway's certificate looks not yet valid or expired by this machine's clock, learns the
/// gateway's time and checks certificates at that time until the clock is fixed.
public final class EdgeClient {
    public let loop: EventLoop
    public let logger: Logger
    var configuration: EdgeClientConfiguration
    private var tlsContext: TLSContext
    private let buffers = MuxBuffers()
    private var connection: MuxConnection?
    private var dialer: GatewayDialer?
    private let retryTimer: LoopTimer
    private let renewalTimer: LoopTimer
    /// Every decision: which replica and when, renewal, re-enrollment, the clock.
    private var core: EdgeCore
    var splices: [ObjectIdentifier: SocketSplice] = [:]
    let kubernetes: KubernetesService?
    /// The services announced and served, by name.
    let services: ServiceDirectory
    /// Called whenever the session comes up (true) or goes down (false); for tests and status.
    public var onStateChange: ((Bool, Failure?) -> Void)?
    /// Called with each certificate the gateway issued (renewal or re-enrollment).
    public var onCertificate: ((Certificate) -> Void)?
    /// Counted as streams are served and sessions end; read by `--metrics-listen`.
    public let metrics = ClientMetrics()

    public init(loop: EventLoop, configuration: EdgeClientConfiguration, logger: Logger) throws {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        tlsContext = try configuration.gateway.tlsContext(applicationProtocol: TunnelProtocol.nodeALPN)
        kubernetes = try configuration.kubernetes.map {
            try KubernetesService(loop: loop, upstream: $0, logger: logger)
        }
        services = ServiceDirectory(
            local: configuration.services.keys, builtIn: configuration.builtInServices.keys,
            kubernetes: configuration.kubernetes == nil ? nil : KubernetesService.serviceName)
        retryTimer = LoopTimer(loop: loop)
        renewalTimer = LoopTimer(loop: loop)
        let replicas = max(1, configuration.gateway.replicas.count)
        core = EdgeCore(
            configuration: EdgeCore.Configuration(
                replicas: replicas, start: Int.random(in: 0..<replicas), reconnect: configuration.reconnect,
                replacedBackoff: configuration.replacedBackoff),
            certificate: CertificateDates(configuration.gateway.identity.chain[0]))
    }

    public var isConnected: Bool { connection?.isEstablished ?? false }

    /// The certificate in use.
    public var certificate: Certificate { configuration.gateway.identity.chain[0] }

    /// The gateway's clock minus ours, in seconds, once learned.
    public var clockOffset: Int64 { core.clockOffset }

    public func start() {
        handle(.start)
    }

    /// Stops for good: closes the session and every spliced stream.
    public func stop() {
        handle(.stop)
    }

    /// Tells the core what happened and carries out what it decides. An intent that starts IO
    /// comes last in what the core returns, so an answer that arrives at once (a bad address)
    /// is handled after everything decided before it.
    func handle(_ event: EdgeCore.Event) {
        let now = EdgeInstant(milliseconds: loop.now, unixSeconds: Int64(Date().timeIntervalSince1970))
        for intent in core.handle(event, now: now) {
            perform(intent)
        }
    }

    private func perform(_ intent: EdgeCore.Intent) {
        switch intent {
        case .dial(let replica, let time):
            dial(replica, certificateTime: time.map { .fixed($0) } ?? .systemClock)
        case .reenroll(let replica, let time, let expiredAt):
            reenroll(at: replica, certificateTime: time.map { .fixed($0) } ?? .systemClock, expiredAt: expiredAt)
        case .askGatewayTime(let replica):
            askTime(of: replica)
        case .retry(let milliseconds, let loss):
            logRetry(after: loss, in: milliseconds)
            retryTimer.start(after: milliseconds) { [unowned self] in handle(.retryTimerFired) }
        case .renew(let milliseconds, let failure):
            if let failure {
                logger.warning(
                    "certificate renewal failed; retrying",
                    metadata: ["reason": "\(failure)", "retry.in_ms": "\(milliseconds)"])
            }
            renewalTimer.start(after: milliseconds) { [unowned self] in handle(.renewalTimerFired) }
        case .cancelRenewal:
            renewalTimer.stop()
        case .requestRenewal:
            requestRenewal()
        case .clockCorrected(let offset, let local, let gateway):
            logger.error(
                "this machine's clock is wrong; checking certificates at the gateway's time until it is fixed (enable NTP or set the clock)",
                metadata: [
                    "clock.local": "\(UTCTime.format(local))", "clock.gateway": "\(UTCTime.format(gateway))",
                    "clock.offset_s": "\(offset)",
                ])
        case .shutDown:
            retryTimer.close()
            renewalTimer.close()
            dialer?.cancel()
            // GOAWAY and TLS close_notify, so the gateway logs a clean goodbye rather than a cut link.
            connection?.abort(Failure(.noError, "client stopping"))
        }
    }

    private func dial(_ replica: Int, certificateTime: TLSConnection.CertificateTime) {
        let address = configuration.gateway.replicas[replica]
        dialer = GatewayDialer(
            loop: loop, host: address.host, port: address.port,
            timeoutMilliseconds: configuration.connectTimeout.wholeMilliseconds,
            addressOffset: Int.random(in: 0..<GatewayDialer.maxAddresses)
        ) { [unowned self] result in
            dialer = nil
            switch result {
            case .success(let socket): startSession(on: socket, certificateTime: certificateTime)
            case .failure(let failure): handle(.dialFailed(Failure(.internalError, failure.message)))
            }
        }
    }

    private func startSession(on socket: StreamConnection, certificateTime: TLSConnection.CertificateTime) {
        configureKeepalive(socket, session: configuration.session, logger: logger)
        do {
            connection = try MuxConnection.makeClient(
                on: socket, context: tlsContext, serverName: configuration.gateway.serverName,
                certificateTime: certificateTime,
                configuration: configuration.session, handshakeTimeout: configuration.handshakeTimeout,
                buffers: buffers,
                delegate: self, logger: logger)
            connection?.start()
        } catch {
            handle(.dialFailed(Failure(.internalError, "cannot start TLS: \(error)")))
        }
    }

    /// Says why the node is not connected, in the words an admin can act on.
    private func logRetry(after loss: EdgeLoss, in milliseconds: UInt64) {
        let metadata: Logger.Metadata = [
            "reason": "\(TunnelErrorCode.describe(loss.failure))", "retry.in_ms": "\(milliseconds)",
        ]
        switch loss.kind {
        case .replaced:
            logger.error(
                "another machine with this node's identity took over its session at the gateway; each machine needs its own node key (enroll it with its own token)",
                metadata: metadata)
        case .revoked:
            logger.error(
                "the gateway revoked this node or refused its certificate; retrying in case an admin re-enrolls it",
                metadata: metadata)
        case .unreachable:
            logger.warning("gateway unreachable; retrying", metadata: metadata)
        }
    }

    /// What the core needs of how a connection or a call ended: whether to slow down, and
    /// whether the handshake refused a certificate by its dates (maybe this machine's clock).
    private func loss(_ failure: Failure, tlsFailure: TLSError?) -> EdgeLoss {
        let kind: EdgeLoss.Kind =
            switch failure.code {
            case TunnelErrorCode.replaced: .replaced
            case TunnelErrorCode.revoked: .revoked
            default: .unreachable
            }
        let datesRefused = tlsFailure.flatMap { $0.refusedCertificateDates ? "\($0)" : nil }
        return EdgeLoss(kind, failure, certificateTimeError: datesRefused)
    }

    // MARK: - Identity upkeep

    /// Asks for a new certificate for the same key over the live session; streams carry on.
    private func requestRenewal() {
        guard let connection, connection.isEstablished else {
            return handle(.renewalFailed(reason: "no session"))
        }
        let csr: String
        do {
            csr = try certificateRequest()
        } catch {
            logger.error("cannot make a certificate request", metadata: ["error": "\(error)"])
            return handle(.renewalFailed(reason: "cannot make a certificate request: \(error)"))
        }
        // Weak: the reply may come (or fail) while the client is being stopped and released.
        connection.request(NodeRequest.renew(csr: csr), reply: CertificateReply.self) { [weak self] result in
            guard let self, !core.isStopped else { return }
            switch result.flatMap({ reply in reply.error.map { .failure(FleetFailure($0)) } ?? .success(reply) }) {
            case .success(let reply):
                handle(
                    adopt(reply, how: "renewed").map { .renewed($0) } ?? .renewalFailed(reason: "unusable certificate"))
            case .failure(let failure):
                handle(.renewalFailed(reason: failure.message))
            }
        }
    }

    /// After a long power-off the certificate has expired: prove the enrolled key with it on an
    /// enrollment connection and get a fresh one. Revoked or removed nodes are told why.
    private func reenroll(at replica: Int, certificateTime: TLSConnection.CertificateTime, expiredAt: Int64) {
        logger.notice(
            "the node certificate has expired; re-enrolling with it",
            metadata: ["certificate.not_after": "\(UTCTime.format(expiredAt))"])
        let csr: String
        do {
            csr = try certificateRequest()
        } catch {
            let failure = Failure(.internalError, "cannot make a certificate request: \(error)")
            return handle(.reenrollmentFailed(EdgeLoss(failure)))
        }
        let endpoint = configuration.gateway, address = endpoint.replicas[replica]
        EnrollmentCall(
            loop: loop, host: address.host, port: address.port, serverName: endpoint.serverName,
            verification: .trustedCAs([TrustedCA(.gateway, certificate: endpoint.gatewayCA)]),
            identity: endpoint.identity, certificateTime: certificateTime, request: .reenroll(csr: csr), logger: logger
        ) { [weak self] result, tlsError in
            // The call outlives a client stopped meanwhile; its answer is then dropped.
            guard let self, !core.isStopped else { return }
            switch result {
            case .success(let reply):
                let failure = Failure(.internalError, "unusable certificate")
                handle(
                    adopt(reply, how: "re-enrolled").map { .reenrolled($0) } ?? .reenrollmentFailed(EdgeLoss(failure)))
            case .failure(let failure):
                let reason = Failure(failure.code ?? .internalError, "re-enrollment failed: \(failure.message)")
                handle(.reenrollmentFailed(loss(reason, tlsFailure: tlsError)))
            }
        }
    }

    /// Asks the gateway's time on a connection that checks signatures and names but no dates.
    private func askTime(of replica: Int) {
        let endpoint = configuration.gateway, address = endpoint.replicas[replica]
        askGatewayTime(
            loop: loop, host: address.host, port: address.port, serverName: endpoint.serverName,
            gatewayCA: endpoint.gatewayCA, logger: logger
        ) { [weak self] result in
            switch result {
            case .success(let gatewayTime): self?.handle(.gatewayTime(gatewayTime))
            case .failure(let failure): self?.handle(.gatewayTimeFailed(reason: failure.message))
            }
        }
    }

    private func certificateRequest() throws -> String {
        let identity = try certificate.tunnelIdentity()
        return String(
            decoding: try CertificateSigningRequest(key: configuration.gateway.identity.key, commonName: identity.name)
                .pem(), as: UTF8.self)
    }

    /// Checks an issued certificate (our key, our name, the gateway's CA), saves it durably and
    /// uses it for the next connections. Nil if it was unusable.
    private func adopt(_ reply: CertificateReply, how: String) -> CertificateDates? {
        do {
            guard let pem = reply.certificate else { throw FleetFailure("the gateway sent no certificate") }
            let identity = try NodeCredentials.accept(
                chainPEM: pem, key: configuration.gateway.identity.key,
                expectedName: try certificate.tunnelIdentity().name,
                gatewayCA: configuration.gateway.gatewayCA)
            if let files = configuration.credentialFiles {
                try NodeCredentials.save(certificateChain: pem, gatewayCA: nil, to: files)
            }
            configuration.gateway.identity = TLSIdentity(
                chain: identity.chain, key: identity.key,
                certificatePath: configuration.gateway.identity.certificatePath,
                keyPath: configuration.gateway.identity.keyPath)
            tlsContext = try configuration.gateway.tlsContext(applicationProtocol: TunnelProtocol.nodeALPN)
            logger.info(
                "node certificate \(how)",
                metadata: [
                    "certificate.not_after": "\(UTCTime.format(identity.chain[0].notAfter))",
                    "certificate.serial": "\(identity.chain[0].serialNumberHex)",
                ])
            onCertificate?(identity.chain[0])
            return CertificateDates(identity.chain[0])
        } catch {
            logger.error("the gateway's certificate reply was unusable", metadata: ["error": "\(error)"])
            return nil
        }
    }
}

extension CertificateDates {
    init(_ certificate: Certificate) {
        self.init(notBefore: certificate.notBefore, notAfter: certificate.notAfter)
    }
}

extension EdgeClient: MuxConnectionDelegate {
    public func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        announce(on: connection)
        return nil
    }

    public func connectionReady(_ connection: MuxConnection) {
        logger.info("connected to the gateway", metadata: ["peer.address": "\(connection.remoteAddress)"])
        handle(.sessionReady)
        onStateChange?(true, nil)
    }

    public func connection(
        _ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        serve(stream, on: connection, metadata: metadata)
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        logger.notice("gateway is going away", metadata: ["reason": "\(failure.reason)"])
    }

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        guard connection === self.connection else { return }
        self.connection = nil
        onStateChange?(false, failure)
        if !core.isStopped { metrics.reconnecting() }
        handle(.sessionClosed(loss(failure, tlsFailure: connection.tlsFailure)))
    }
}
