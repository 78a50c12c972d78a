import Logging
import Multiplex
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

/// Where a client dials and how it proves who it is.
public struct GatewayEndpoint: Sendable {
    public var host: String
    public var port: UInt16
    /// Every replica a node may dial, `host:port` first; one entry unless `--gateway` lists
    /// several. The node spreads and fails over across them (`GatewayRotation`).
    public var replicas: [(host: String, port: UInt16)]
    /// The name the gateway's certificate must carry; the host itself unless set.
    public var serverName: String
    public var identity: TLSIdentity
    /// The CA that signed the gateway's certificate.
    public var gatewayCA: Certificate

    public init(host: String, port: UInt16, serverName: String? = nil, identity: TLSIdentity, gatewayCA: Certificate) {
        self.host = host
        self.port = port
        replicas = [(host, port)]
        self.serverName = serverName ?? host
        self.identity = identity
        self.gatewayCA = gatewayCA
    }

    package func tlsContext(applicationProtocol: String) throws -> TLSContext {
        try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: identity,
                peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: gatewayCA)]),
                applicationProtocols: [applicationProtocol]))
    }
}

/// A service the client itself provides on a stream (the recorded `shell`, device `logs`),
/// rather than a local address it dials. It owns the stream once `serve` is called: it must
/// accept or reset it. Loop-confined.
public protocol BuiltInService: AnyObject {
    func serve(_ stream: StreamID, on connection: MuxConnection, parameters: [String: String])
}

/// A service the node offers: a name the gateway may ask for, and the address only the node knows.
public struct LocalService: Sendable, Equatable {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
}

public struct EdgeClientConfiguration {
    public var gateway: GatewayEndpoint
    /// Name → local address. The client dials only these: the gateway can ask for a name, never
    /// for an address, so nothing it sends can turn the node into a pivot into the plant network.
    public var services: [String: LocalService]
    /// Services the client provides itself, by name; their names never clash with `services`.
    public var builtInServices: [String: any BuiltInService] = [:]
    /// The API server behind the `kubernetes` service (`tunnel client --kubernetes`), if configured.
    public var kubernetes: KubernetesUpstream?
    public var labels: [String: String]
    /// Where renewed certificates are saved; nil keeps them in memory only.
    public var credentialFiles: NodeCredentialFiles?
    public var session = SessionConfiguration()
    public var handshakeTimeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(10)
    public var serviceConnectTimeout: Duration = .seconds(5)
    /// When to dial again after a loss; it starts over once the gateway accepted the node.
    public var reconnect = ReconnectSchedule()
    /// After the gateway said another machine with this node's identity took the session over
    /// (GOAWAY `replaced`): a slower backoff whose waits really grow (at least half the ceiling),
    /// so two machines sharing one key slow each other down instead of spinning; the newest
    /// session still always wins. It starts over only after a session outlived its longest wait.
    public var replacedBackoff = Backoff(base: .seconds(5), cap: .seconds(300), floor: 0.5)
    /// The version announced to the gateway (the CLI adds the source commit).
    public var softwareVersion = TunnelProtocol.softwareVersion

    public init(
        gateway: GatewayEndpoint, services: [String: LocalService], labels: [String: String] = [:],
        credentialFiles: NodeCredentialFiles? = nil
    ) {
        self.gateway = gateway
        self.services = services
        self.labels = labels
        self.credentialFiles = credentialFiles
    }
}

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
    private var configuration: EdgeClientConfiguration
    private var tlsContext: TLSContext
    private let buffers = MuxBuffers()
    private var connection: MuxConnection?
    private var dialer: GatewayDialer?
    private let retryTimer: LoopTimer
    private let renewalTimer: LoopTimer
    private var stopped = false
    private var connectedAt: UInt64?
    /// Which replica to dial next and when.
    private var rotation: GatewayRotation
    private var splices: [ObjectIdentifier: SocketSplice] = [:]
    private let kubernetes: KubernetesService?
    /// The gateway's clock minus ours, in seconds, once learned.
    public private(set) var clockOffset: Int64 = 0
    /// Set after a time check, so a second certificate-time failure is not blamed on the clock.
    private var clockChecked = false
    private var renewing = false
    /// Called whenever the session comes up (true) or goes down (false); for tests and status.
    public var onStateChange: ((Bool, Failure?) -> Void)?
    /// Called with each certificate the gateway issued (renewal or re-enrollment).
    public var onCertificate: ((Certificate) -> Void)?
    /// Counted as streams are served and sessions end; read by `--metrics-listen`.
    public let metrics = ClientMetrics()

    /// A difference from the gateway's clock smaller than this is left alone.
    static let toleratedClockSkew: Int64 = 60

    public init(loop: EventLoop, configuration: EdgeClientConfiguration, logger: Logger) throws {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        tlsContext = try configuration.gateway.tlsContext(applicationProtocol: TunnelProtocol.nodeALPN)
        kubernetes = try configuration.kubernetes.map {
            try KubernetesService(loop: loop, upstream: $0, logger: logger)
        }
        retryTimer = LoopTimer(loop: loop)
        renewalTimer = LoopTimer(loop: loop)
        let replicas = configuration.gateway.replicas.count
        rotation = GatewayRotation(
            count: max(1, replicas), start: Int.random(in: 0..<max(1, replicas)),
            schedule: configuration.reconnect)
    }

    public var isConnected: Bool { connection?.isEstablished ?? false }

    /// The certificate in use.
    public var certificate: Certificate { configuration.gateway.identity.chain[0] }

    /// Now by the gateway's clock, as far as we know it.
    private var now: Int64 { Int64(Date().timeIntervalSince1970) + clockOffset }

    private var certificateTime: TLSConnection.CertificateTime {
        clockOffset == 0 ? .systemClock : .fixed(now)
    }

    public func start() {
        dial()
    }

    /// Stops for good: closes the session and every spliced stream.
    public func stop() {
        stopped = true
        retryTimer.close()
        renewalTimer.close()
        dialer?.cancel()
        // GOAWAY and TLS close_notify, so the gateway logs a clean goodbye rather than a cut link.
        connection?.abort(Failure(.noError, "client stopping"))
    }

    private func dial() {
        guard !stopped else { return }
        if certificate.notAfter <= now {
            reenroll()
            return
        }
        let replica = currentReplica
        dialer = GatewayDialer(
            loop: loop, host: replica.host, port: replica.port,
            timeoutMilliseconds: configuration.connectTimeout.wholeMilliseconds,
            addressOffset: Int.random(in: 0..<GatewayDialer.maxAddresses)
        ) { [unowned self] result in
            dialer = nil
            switch result {
            case .success(let socket): startSession(on: socket)
            case .failure(let failure): retry(after: Failure(.internalError, failure.message))
            }
        }
    }

    /// The replica of the `--gateway` list to dial now.
    private var currentReplica: (host: String, port: UInt16) { configuration.gateway.replicas[rotation.current] }

    private func startSession(on socket: StreamConnection) {
        configureKeepalive(socket, keepaliveInterval: configuration.session.keepaliveInterval, logger: logger)
        do {
            connection = try MuxConnection.makeClient(
                on: socket, context: tlsContext, serverName: configuration.gateway.serverName,
                certificateTime: certificateTime,
                configuration: configuration.session, handshakeTimeout: configuration.handshakeTimeout,
                buffers: buffers,
                delegate: self, logger: logger)
            connection?.start()
        } catch {
            retry(after: Failure(.internalError, "cannot start TLS: \(error)"))
        }
    }

    private func retry(after failure: Failure) {
        guard !stopped else { return }
        let lasted = connectedAt.map { loop.now &- $0 } ?? 0
        if lasted >= configuration.replacedBackoff.cap.wholeMilliseconds { configuration.replacedBackoff.reset() }
        connectedAt = nil
        // The next replica of the list, after a short jittered wait, or a backoff once all failed.
        var milliseconds = rotation.failed(now: loop.now)
        switch failure.code {
        case TunnelErrorCode.replaced:
            milliseconds = max(milliseconds, configuration.replacedBackoff.nextDelay().wholeMilliseconds)
            logger.error(
                "another machine with this node's identity took over its session at the gateway; each machine needs its own node key (enroll it with its own token)",
                metadata: [
                    "reason": "\(TunnelErrorCode.describe(failure))", "retry.in_ms": "\(milliseconds)",
                ])
        case TunnelErrorCode.revoked:
            logger.error(
                "the gateway revoked this node or refused its certificate; retrying in case an admin re-enrolls it",
                metadata: [
                    "reason": "\(TunnelErrorCode.describe(failure))", "retry.in_ms": "\(milliseconds)",
                ])
        default:
            logger.warning(
                "gateway unreachable; retrying",
                metadata: [
                    "reason": "\(TunnelErrorCode.describe(failure))", "retry.in_ms": "\(milliseconds)",
                ])
        }
        retryTimer.start(after: milliseconds) { [unowned self] in dial() }
    }

    // MARK: - Identity upkeep

    /// Two thirds into the certificate's validity.
    private var renewalTime: Int64 {
        let certificate = self.certificate
        return certificate.notBefore + (certificate.notAfter - certificate.notBefore) * 2 / 3
    }

    private func scheduleRenewal() {
        let delay = max(0, renewalTime - now)
        renewalTimer.start(after: UInt64(delay) * 1000) { [unowned self] in renew() }
    }

    /// Asks for a new certificate for the same key over the live session; streams carry on.
    private func renew() {
        guard let connection, connection.isEstablished, !renewing else { return }
        let csr: String
        do {
            csr = try certificateRequest()
        } catch {
            logger.error("cannot make a certificate request", metadata: ["error": "\(error)"])
            return
        }
        renewing = true
        // Weak: the reply may come (or fail) while the client is being stopped and released.
        connection.request(NodeRequest.renew(csr: csr), reply: CertificateReply.self) { [weak self] result in
            guard let self, !stopped else { return }
            renewing = false
            switch result.flatMap({ reply in reply.error.map { .failure(FleetFailure($0)) } ?? .success(reply) }) {
            case .success(let reply):
                if adopt(reply, how: "renewed") { scheduleRenewal() }
            case .failure(let failure):
                logger.warning(
                    "certificate renewal failed; retrying in a minute", metadata: ["reason": "\(failure.message)"])
                renewalTimer.start(after: UInt64(min(60, max(1, (certificate.notAfter - now) / 10))) * 1000) {
                    [unowned self] in renew()
                }
            }
        }
    }

    /// After a long power-off the certificate has expired: prove the enrolled key with it on an
    /// enrollment connection and get a fresh one. Revoked or removed nodes are told why.
    private func reenroll() {
        logger.notice(
            "the node certificate has expired; re-enrolling with it",
            metadata: [
                "certificate.not_after": "\(UTCTime.format(certificate.notAfter))"
            ])
        let csr: String
        do {
            csr = try certificateRequest()
        } catch {
            retry(after: Failure(.internalError, "cannot make a certificate request: \(error)"))
            return
        }
        let endpoint = configuration.gateway, replica = currentReplica
        EnrollmentCall(
            loop: loop, host: replica.host, port: replica.port, serverName: endpoint.serverName,
            verification: .trustedCAs([TrustedCA(.gateway, certificate: endpoint.gatewayCA)]),
            identity: endpoint.identity, certificateTime: certificateTime, request: .reenroll(csr: csr), logger: logger
        ) { [weak self] result, tlsError in
            // The call outlives a client stopped meanwhile; its answer is then dropped.
            guard let self, !stopped else { return }
            switch result {
            case .success(let reply):
                if adopt(reply, how: "re-enrolled") {
                    dial()
                } else {
                    retry(after: Failure(.internalError, "unusable certificate"))
                }
            case .failure(let failure):
                if let tlsError, checkClockAfter(tlsError) { return }
                retry(after: Failure(failure.code ?? .internalError, "re-enrollment failed: \(failure.message)"))
            }
        }
    }

    /// A certificate-time failure may be this machine's clock (no RTC after a cold boot): ask
    /// the gateway's time once, on a connection that checks signatures and names but no dates.
    /// Returns true when it took over the retry.
    private func checkClockAfter(_ error: TLSError) -> Bool {
        guard !clockChecked, error.code == .certificateNotYetValid || error.code == .certificateExpired else {
            return false
        }
        clockChecked = true
        let endpoint = configuration.gateway, replica = currentReplica
        askGatewayTime(
            loop: loop, host: replica.host, port: replica.port, serverName: endpoint.serverName,
            gatewayCA: endpoint.gatewayCA,
            logger: logger
        ) { [weak self] result in
            guard let self, !stopped else { return }
            switch result {
            case .success(let gatewayTime):
                let local = Int64(Date().timeIntervalSince1970)
                let offset = gatewayTime - local
                if abs(offset) > Self.toleratedClockSkew {
                    clockOffset = offset
                    logger.error(
                        "this machine's clock is wrong; checking certificates at the gateway's time until it is fixed (enable NTP or set the clock)",
                        metadata: [
                            "clock.local": "\(UTCTime.format(local))",
                            "clock.gateway": "\(UTCTime.format(gatewayTime))",
                            "clock.offset_s": "\(offset)",
                        ])
                    dial()
                } else {
                    retry(after: Failure(.internalError, "certificate check failed and the clock is right: \(error)"))
                }
            case .failure(let failure):
                retry(after: Failure(.internalError, "cannot learn the gateway's time: \(failure.message)"))
            }
        }
        return true
    }

    private func certificateRequest() throws -> String {
        let identity = try certificate.tunnelIdentity()
        return String(
            decoding: try CertificateSigningRequest(key: configuration.gateway.identity.key, commonName: identity.name)
                .pem(), as: UTF8.self)
    }

    /// Checks an issued certificate (our key, our name, the gateway's CA), saves it durably and
    /// uses it for the next connections. False if it was unusable.
    private func adopt(_ reply: CertificateReply, how: String) -> Bool {
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
            return true
        } catch {
            logger.error("the gateway's certificate reply was unusable", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func announce(on connection: MuxConnection) {
        let announcement = NodeAnnouncement(
            labels: configuration.labels,
            services: (Array(configuration.services.keys) + configuration.builtInServices.keys
                + (configuration.kubernetes == nil ? [] : [KubernetesService.serviceName])).sorted(),
            version: configuration.softwareVersion, bootID: Self.bootID(), uptimeSeconds: Self.uptime())
        do {
            // The gateway accepts the announcement once it has taken the node in: the reconnect
            // backoff starts over from then on.
            let handler = DiscardingHandler(connection: connection) { [unowned self] in
                rotation.accepted(now: loop.now)
            }
            handler.stream = try connection.openStream(
                metadata: TunnelProtocol.encode(NodeRequest.announce(announcement)), interactive: false,
                handler: handler)
            connection.finish(handler.stream)
        } catch {
            logger.warning("cannot announce to the gateway", metadata: ["error": "\(error)"])
        }
    }

    /// The kernel's id for this boot; it changes on every reboot.
    static func bootID() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown")
            .trimmingASCIIWhitespace()
    }

    static func uptime() -> Double {
        let text = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8)) ?? ""
        return Double(text.split(separator: " ").first ?? "") ?? 0
    }

    /// Serves a stream the gateway opened: dial the named local service, splice on success.
    private func serve(_ stream: StreamID, on connection: MuxConnection, metadata: [UInt8]) {
        guard let request = TunnelProtocol.decode(ServiceRequest.self, from: metadata) else {
            metrics.streamServed(service: "none", outcome: "bad_request")
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        if request.service == KubernetesService.serviceName, let kubernetes {
            metrics.streamServed(service: request.service, outcome: "ok")
            kubernetes.serve(stream, on: connection, identity: request.kubernetes)
            return
        }
        if let builtIn = configuration.builtInServices[request.service] {
            metrics.streamServed(service: request.service, outcome: "ok")
            builtIn.serve(stream, on: connection, parameters: request.parameters ?? [:])
            return
        }
        guard let service = configuration.services[request.service] else {
            logger.notice("gateway asked for an unknown service", metadata: ["service": "\(request.service)"])
            metrics.streamServed(service: "other", outcome: "unknown_service")
            connection.reset(stream, code: TunnelErrorCode.unknownService)
            return
        }
        let address: SocketAddress
        do {
            address = try SocketAddress(ip: service.host, port: service.port)
        } catch {
            connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
            return
        }
        let timeout = configuration.serviceConnectTimeout.wholeMilliseconds
        do {
            // Bytes the operator pipelined behind the OPEN are queued on the connecting socket.
            var splice: SocketSplice?
            let socket = try StreamConnection.connect(loop: loop, to: address, timeoutMilliseconds: timeout) {
                [unowned self] result in
                guard let splice else { return }
                switch result {
                case .success:
                    metrics.streamServed(service: request.service, outcome: "ok")
                    do {
                        try connection.accept(stream)
                        splice.start()
                    } catch {
                        connection.reset(stream, code: .cancel)
                        splices[ObjectIdentifier(splice)] = nil
                    }
                case .failure(let error):
                    logger.notice(
                        "local service unreachable", metadata: ["service": "\(request.service)", "error": "\(error)"])
                    metrics.streamServed(service: request.service, outcome: "unreachable")
                    connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
                    splices[ObjectIdentifier(splice)] = nil
                }
            }
            try? socket.setNoDelay(true)
            let created = SocketSplice(connection: connection, stream: stream, socket: socket) { [unowned self] _ in
                guard let splice else { return }
                metrics.relayed(toService: splice.bytesToLocal, fromService: splice.bytesFromLocal)
                splices[ObjectIdentifier(splice)] = nil
            }
            splice = created
            splices[ObjectIdentifier(created)] = created
            connection.attach(created, to: stream)
        } catch {
            connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
        }
    }
}

extension EdgeClient: MuxConnectionDelegate {
    public func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        announce(on: connection)
        return nil
    }

    public func connectionReady(_ connection: MuxConnection) {
        connectedAt = loop.now
        clockChecked = false
        logger.info("connected to the gateway", metadata: ["peer.address": "\(connection.remoteAddress)"])
        scheduleRenewal()
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
        renewalTimer.stop()
        onStateChange?(false, failure)
        if !stopped { metrics.reconnecting() }
        if !stopped, let tlsError = connection.tlsFailure, checkClockAfter(tlsError) { return }
        retry(after: failure)
    }
}
