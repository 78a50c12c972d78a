import Foundation
import Logging
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Where a client dials and how it proves who it is.
public struct GatewayEndpoint: Sendable {
    public var host: String
    public var port: UInt16
    /// The name the gateway's certificate must carry; the host itself unless set.
    public var serverName: String
    public var identity: TLSIdentity
    /// The CA that signed the gateway's certificate.
    public var gatewayCA: Certificate

    public init(host: String, port: UInt16, serverName: String? = nil, identity: TLSIdentity, gatewayCA: Certificate) {
        self.host = host
        self.port = port
        self.serverName = serverName ?? host
        self.identity = identity
        self.gatewayCA = gatewayCA
    }

    func tlsContext(applicationProtocol: String) throws -> TLSContext {
        try TLSContext(configuration: TLSConfiguration(
            role: .client, identity: identity,
            peerVerification: .trustedCAs([TrustedCA(label: "gateway CA", certificate: gatewayCA)]),
            applicationProtocols: [applicationProtocol]))
    }
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

public struct EdgeClientConfiguration: Sendable {
    public var gateway: GatewayEndpoint
    /// Name → local address. The client dials only these: the gateway can ask for a name, never
    /// for an address, so nothing it sends can turn the node into a pivot into the plant network.
    public var services: [String: LocalService]
    public var labels: [String: String]
    public var session = SessionConfiguration()
    public var handshakeTimeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(10)
    public var serviceConnectTimeout: Duration = .seconds(5)
    public var backoff = Backoff()

    public init(gateway: GatewayEndpoint, services: [String: LocalService], labels: [String: String] = [:]) {
        self.gateway = gateway
        self.services = services
        self.labels = labels
    }
}

/// The edge side: dials out to the gateway, keeps one session up for as long as it runs,
/// reconnecting with full-jitter backoff after any network or gateway failure, and splices each
/// stream the gateway opens to the named local service. It never exits on a network error.
public final class EdgeClient {
    public let loop: EventLoop
    public let logger: Logger
    private var configuration: EdgeClientConfiguration
    private let tlsContext: TLSContext
    private let buffers = MuxBuffers()
    private var connection: MuxConnection?
    private var pendingSocket: StreamConnection?
    private var resolver: Resolver?
    private let retryTimer: LoopTimer
    private var stopped = false
    private var connectedAt: UInt64?
    private var splices: [ObjectIdentifier: SocketSplice] = [:]
    /// Called whenever the session comes up (true) or goes down (false); for tests and status.
    public var onStateChange: ((Bool, Failure?) -> Void)?

    /// A session that lasted this long was healthy: the next failure retries quickly again.
    static let stableAfterMilliseconds: UInt64 = 30_000

    public init(loop: EventLoop, configuration: EdgeClientConfiguration, logger: Logger) throws {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        tlsContext = try configuration.gateway.tlsContext(applicationProtocol: TunnelProtocol.nodeALPN)
        retryTimer = LoopTimer(loop: loop)
    }

    public var isConnected: Bool { connection?.isEstablished ?? false }

    public func start() {
        dial()
    }

    /// Stops for good: closes the session and every spliced stream.
    public func stop() {
        stopped = true
        retryTimer.close()
        resolver?.cancel()
        pendingSocket?.close()
        // GOAWAY and TLS close_notify, so the gateway logs a clean goodbye rather than a cut link.
        connection?.abort(Failure(.noError, "client stopping"))
    }

    private func dial() {
        guard !stopped else { return }
        let target = "\(configuration.gateway.host):\(configuration.gateway.port)"
        do {
            resolver = try Resolver.resolve(target, loop: loop) { [unowned self] result in
                resolver = nil
                switch result {
                case .success(let addresses) where !addresses.isEmpty:
                    connect(to: addresses[0])
                case .success:
                    retry(after: Failure(.internalError, "\(target) resolved to no address"))
                case .failure(let error):
                    retry(after: Failure(.internalError, "cannot resolve \(target): \(error)"))
                }
            }
        } catch {
            retry(after: Failure(.internalError, "cannot resolve \(target): \(error)"))
        }
    }

    private func connect(to address: SocketAddress) {
        guard !stopped else { return }
        let timeout = UInt64(configuration.connectTimeout.components.seconds * 1000)
        do {
            let socket = try StreamConnection.connect(loop: loop, to: address, timeoutMilliseconds: timeout) { [unowned self] result in
                let socket = pendingSocket
                pendingSocket = nil
                switch result {
                case .success:
                    if let socket { startSession(on: socket) }
                case .failure(let error):
                    retry(after: Failure(.internalError, "cannot connect to the gateway at \(address): \(error)"))
                }
            }
            pendingSocket = socket
        } catch {
            retry(after: Failure(.internalError, "cannot connect to the gateway at \(address): \(error)"))
        }
    }

    private func startSession(on socket: StreamConnection) {
        configureKeepalive(socket, keepaliveInterval: configuration.session.keepaliveInterval, logger: logger)
        let tls: TLSConnection
        do {
            tls = try TLSConnection(context: tlsContext, serverHost: configuration.gateway.serverName)
        } catch {
            socket.close()
            retry(after: Failure(.internalError, "cannot start TLS: \(error)"))
            return
        }
        let connection = MuxConnection(
            loop: loop, socket: socket, tls: tls, role: .dialer, configuration: configuration.session,
            handshakeTimeout: configuration.handshakeTimeout, buffers: buffers, logger: logger)
        connection.delegate = self
        self.connection = connection
        connection.start()
    }

    private func retry(after failure: Failure) {
        guard !stopped else { return }
        if let connectedAt, loop.now &- connectedAt >= Self.stableAfterMilliseconds {
            configuration.backoff.reset()
        }
        connectedAt = nil
        let delay = configuration.backoff.nextDelay()
        let milliseconds = UInt64(delay.components.seconds * 1000) + UInt64(delay.components.attoseconds / 1_000_000_000_000_000)
        logger.warning("gateway unreachable; retrying", metadata: [
            "reason": "\(failure.reason)", "retry.in_ms": "\(milliseconds)",
        ])
        retryTimer.start(after: milliseconds) { [unowned self] in dial() }
    }

    private func announce(on connection: MuxConnection) {
        let announcement = NodeAnnouncement(
            labels: configuration.labels, services: configuration.services.keys.sorted(),
            version: TunnelProtocol.softwareVersion, bootID: Self.bootID(), uptimeSeconds: Self.uptime())
        do {
            let handler = DiscardingHandler(connection: connection)
            handler.stream = try connection.openStream(
                metadata: TunnelProtocol.encode(announcement), interactive: false, handler: handler)
            connection.finish(handler.stream)
        } catch {
            logger.warning("cannot announce to the gateway", metadata: ["error": "\(error)"])
        }
    }

    /// The kernel's id for this boot; it changes on every reboot.
    static func bootID() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func uptime() -> Double {
        let text = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8)) ?? ""
        return Double(text.split(separator: " ").first ?? "") ?? 0
    }

    /// Serves a stream the gateway opened: dial the named local service, splice on success.
    private func serve(_ stream: StreamID, on connection: MuxConnection, metadata: [UInt8]) {
        guard let request = TunnelProtocol.decode(ServiceRequest.self, from: metadata) else {
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        guard let service = configuration.services[request.service] else {
            logger.notice("gateway asked for an unknown service", metadata: ["service": "\(request.service)"])
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
        let timeout = UInt64(configuration.serviceConnectTimeout.components.seconds * 1000)
        do {
            // Bytes the operator pipelined behind the OPEN are queued on the connecting socket.
            var splice: SocketSplice?
            let socket = try StreamConnection.connect(loop: loop, to: address, timeoutMilliseconds: timeout) { [unowned self] result in
                guard let splice else { return }
                switch result {
                case .success:
                    do {
                        try connection.accept(stream)
                        splice.start()
                    } catch {
                        connection.reset(stream, code: .cancel)
                        splices[ObjectIdentifier(splice)] = nil
                    }
                case .failure(let error):
                    logger.notice("local service unreachable", metadata: ["service": "\(request.service)", "error": "\(error)"])
                    connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
                    splices[ObjectIdentifier(splice)] = nil
                }
            }
            try? socket.setNoDelay(true)
            let created = SocketSplice(connection: connection, stream: stream, socket: socket) { [unowned self] _ in
                if let splice { splices[ObjectIdentifier(splice)] = nil }
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
        logger.info("connected to the gateway", metadata: ["peer.address": "\(connection.remoteAddress)"])
        onStateChange?(true, nil)
    }

    public func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        serve(stream, on: connection, metadata: metadata)
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        logger.notice("gateway is going away", metadata: ["reason": "\(failure.reason)"])
    }

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        guard connection === self.connection else { return }
        self.connection = nil
        onStateChange?(false, failure)
        retry(after: failure)
    }
}
