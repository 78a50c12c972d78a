import Foundation
import Logging
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Everything the gateway needs to run, already loaded and checked by the caller.
public struct GatewayConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: UInt16
    /// The gateway's own certificate chain (leaf, then the node CA) and key.
    public var identity: TLSIdentity
    public var nodeCA: Certificate
    public var operatorCA: Certificate
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long SIGTERM waits for streams to finish before cutting them.
    public var drainTimeout: Duration = .seconds(30)
    public var session = SessionConfiguration()

    public init(listenHost: String, listenPort: UInt16, identity: TLSIdentity, nodeCA: Certificate, operatorCA: Certificate) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.identity = identity
        self.nodeCA = nodeCA
        self.operatorCA = operatorCA
    }
}

/// The central gateway: one port for edge nodes and operators, told apart by ALPN and by the CA
/// that signed the certificate. Holds exactly one live session per node (the newest
/// authenticated one wins) and splices each operator stream to a service stream on its node.
/// Identity comes only from verified certificates. Loop-confined.
public final class Gateway {
    public let loop: EventLoop
    public let logger: Logger
    private let configuration: GatewayConfiguration
    private let tlsContext: TLSContext
    /// One set of scratch buffers for all connections: they share the loop.
    private let buffers = MuxBuffers()
    private var listener: TCPListener?
    /// Every node ever seen in this run, online or not.
    private var nodes: [String: NodeRecord] = [:]
    /// Connections whose peer is not yet classified, and operators' connections.
    private var connections: [ObjectIdentifier: Peer] = [:]
    private var relays: [ObjectIdentifier: StreamRelay] = [:]
    private var drainTimer: LoopTimer?
    private var onStopped: (() -> Void)?

    /// What a connection turned out to be after its handshake.
    private enum Peer {
        case unclassified(MuxConnection)
        case node(String, MuxConnection)
        case `operator`(String, MuxConnection)

        var connection: MuxConnection {
            switch self {
            case .unclassified(let connection), .node(_, let connection), .operator(_, let connection): connection
            }
        }
    }

    /// The gateway's view of one node: its live session, if any, and what it said about itself.
    private struct NodeRecord {
        var name: String
        var connection: MuxConnection?
        /// Bumped for every new session, so streams are never routed to a stale one.
        var epoch = 0
        var announcement: NodeAnnouncement?
        var remoteAddress = ""
        var connectedSince: Date?
        var lastDisconnectReason: String?
        var lastBootID: String?
        var previousSessionEnded: String?
    }

    public init(loop: EventLoop, configuration: GatewayConfiguration, logger: Logger) throws {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        tlsContext = try TLSContext(configuration: TLSConfiguration(
            role: .server,
            identity: configuration.identity,
            peerVerification: .trustedCAs([
                TrustedCA(label: TunnelProtocol.nodeCALabel, certificate: configuration.nodeCA),
                TrustedCA(label: TunnelProtocol.operatorCALabel, certificate: configuration.operatorCA),
            ]),
            applicationProtocols: [TunnelProtocol.nodeALPN, TunnelProtocol.operatorALPN]))
    }

    /// Starts listening; returns the bound address (its port is the real one when 0 was asked).
    @discardableResult
    public func start() throws(IOError) -> SocketAddress {
        let address = try SocketAddress(ip: configuration.listenHost, port: configuration.listenPort)
        let listener = try TCPListener(loop: loop, address: address) { [unowned self] result in
            switch result {
            case .success(let socket): accepted(socket)
            case .failure(let error): logger.warning("accept failed", metadata: ["error": "\(error)"])
            }
        }
        self.listener = listener
        logger.info("gateway listening", metadata: ["listen": "\(listener.localAddress)"])
        return listener.localAddress
    }

    /// Graceful stop (SIGTERM): no new connections, go-away to everyone, streams drain for up to
    /// the drain timeout, then whatever is left is cut. `completion` runs once all are closed.
    public func stop(completion: @escaping () -> Void) {
        listener?.close()
        listener = nil
        onStopped = completion
        let open = connections.values.map(\.connection)
        logger.info("gateway stopping", metadata: ["connections": "\(open.count)"])
        for connection in open { connection.goAway(reason: "gateway shutting down") }
        let timer = LoopTimer(loop: loop)
        timer.start(after: UInt64(configuration.drainTimeout.components.seconds) * 1000) { [unowned self] in
            for peer in connections.values {
                peer.connection.abort(Failure(.noError, "gateway shut down; drain time is over"))
            }
        }
        drainTimer = timer
        finishStopIfDrained()
    }

    private func finishStopIfDrained() {
        guard let onStopped, connections.isEmpty else { return }
        self.onStopped = nil
        drainTimer?.close()
        drainTimer = nil
        onStopped()
    }

    private func accepted(_ socket: StreamConnection) {
        guard onStopped == nil else {
            socket.close()
            return
        }
        configureKeepalive(socket, keepaliveInterval: configuration.session.keepaliveInterval, logger: logger)
        let tls: TLSConnection
        do {
            tls = try TLSConnection(context: tlsContext)
        } catch {
            logger.error("cannot start TLS", metadata: ["error": "\(error)"])
            socket.close()
            return
        }
        let connection = MuxConnection(
            loop: loop, socket: socket, tls: tls, role: .acceptor, configuration: configuration.session,
            handshakeTimeout: configuration.handshakeTimeout, buffers: buffers, logger: logger)
        connection.delegate = self
        connections[ObjectIdentifier(connection)] = .unclassified(connection)
        connection.start()
    }

    // MARK: - Nodes

    /// The nodes `tunnel nodes` lists: online first, then by name.
    public func nodeStatuses() -> [NodeStatus] {
        let now = loop.now
        return nodes.values.map { record in
            NodeStatus(
                name: record.name, online: record.connection != nil,
                labels: record.announcement?.labels ?? [:], services: record.announcement?.services ?? [],
                remoteAddress: record.remoteAddress,
                connectedSince: record.connectedSince?.timeIntervalSince1970,
                lastKeepaliveSecondsAgo: record.connection?.lastPongAt.map { Double(now &- $0) / 1000 },
                version: record.announcement?.version ?? "",
                previousSessionEnded: record.connection == nil ? record.lastDisconnectReason : record.previousSessionEnded)
        }.sorted { ($0.online ? 0 : 1, $0.name) < ($1.online ? 0 : 1, $1.name) }
    }

    private func registerNode(_ name: String, connection: MuxConnection) {
        var record = nodes[name] ?? NodeRecord(name: name)
        if let stale = record.connection {
            logger.notice("node reconnected; replacing its older session", metadata: [
                "node.name": "\(name)", "peer.address": "\(connection.remoteAddress)", "old.address": "\(stale.remoteAddress)",
            ])
            connections[ObjectIdentifier(stale)] = .unclassified(stale)
            stale.abort(Failure(TunnelErrorCode.replaced, "replaced by a newer session of \(name) from \(connection.remoteAddress)"))
            record.lastDisconnectReason = "replaced by a newer session"
        }
        record.connection = connection
        record.epoch += 1
        record.remoteAddress = connection.remoteAddress
        record.connectedSince = Date()
        record.previousSessionEnded = record.lastDisconnectReason
        nodes[name] = record
        connections[ObjectIdentifier(connection)] = .node(name, connection)
        logger.info("node connected", metadata: ["node.name": "\(name)", "peer.address": "\(connection.remoteAddress)", "node.epoch": "\(record.epoch)"])
    }

    private func receiveAnnouncement(from name: String, connection: MuxConnection, stream: StreamID, metadata: [UInt8]) {
        guard var record = nodes[name], record.connection === connection,
              let announcement = TunnelProtocol.decode(NodeAnnouncement.self, from: metadata) else {
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        if let lastBoot = record.lastBootID, lastBoot != announcement.bootID {
            record.previousSessionEnded = "node rebooted (up \(Int(announcement.uptimeSeconds)) s); before that: \(record.previousSessionEnded ?? "first session")"
        }
        record.lastBootID = announcement.bootID
        record.announcement = announcement
        nodes[name] = record
        do {
            try connection.accept(stream, handler: DiscardingHandler(connection: connection, stream: stream))
            connection.finish(stream)
        } catch {
            connection.reset(stream, code: .cancel)
        }
    }

    // MARK: - Operators

    private func handleOperatorRequest(from name: String, connection: MuxConnection, stream: StreamID, metadata: [UInt8], interactive: Bool) {
        switch TunnelProtocol.decode(OperatorRequest.self, from: metadata) {
        case .listNodes:
            do {
                try connection.accept(stream, handler: DiscardingHandler(connection: connection, stream: stream))
                try connection.write(TunnelProtocol.encode(nodeStatuses())[...], on: stream)
                connection.finish(stream)
            } catch {
                connection.reset(stream, code: .cancel)
            }
        case .connect(let node, let service):
            connect(operatorName: name, connection: connection, stream: stream, node: node, service: service, interactive: interactive)
        case nil:
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }

    private func connect(operatorName: String, connection: MuxConnection, stream: StreamID, node: String, service: String, interactive: Bool) {
        let logMetadata: Logger.Metadata = [
            "operator.name": "\(operatorName)", "node.name": "\(node)", "service": "\(service)", "stream.id": "\(stream)",
        ]
        guard let record = nodes[node], let nodeConnection = record.connection, nodeConnection.canOpenStream else {
            logger.info("stream refused: node not connected", metadata: logMetadata)
            connection.reset(stream, code: TunnelErrorCode.unknownNode)
            return
        }
        let relay = StreamRelay(first: (connection, stream), secondConnection: nodeConnection) { [unowned self] relay, outcome in
            switch outcome {
            case .accepted:
                do {
                    try connection.accept(stream)
                    logger.info("stream open", metadata: logMetadata)
                } catch {
                    nodeConnection.reset(relay.second.stream, code: .cancel)
                    relays[ObjectIdentifier(relay)] = nil
                }
            case .ended(let failure):
                relays[ObjectIdentifier(relay)] = nil
                logger.debug("stream ended", metadata: logMetadata.merging(["reason": "\(failure)"]) { $1 })
            }
        }
        do {
            try relay.openSecond(metadata: TunnelProtocol.encode(ServiceRequest(service: service)), interactive: interactive)
        } catch {
            logger.info("stream refused: cannot open a stream to the node", metadata: logMetadata.merging(["error": "\(error)"]) { $1 })
            connection.reset(stream, code: .refusedStream)
            return
        }
        connection.attach(relay.first, to: stream)
        relays[ObjectIdentifier(relay)] = relay
    }
}

extension Gateway: MuxConnectionDelegate {
    public func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        guard let identity = connection.peerIdentity, let verifiedBy = connection.verifiedBy else {
            return Failure(TunnelErrorCode.wrongRole, "no verified tunnel identity")
        }
        switch connection.applicationProtocol {
        case TunnelProtocol.nodeALPN:
            guard verifiedBy.label == TunnelProtocol.nodeCALabel, identity.role == .node else {
                return Failure(TunnelErrorCode.wrongRole, "certificate of \(identity.role.rawValue) \(identity.name) cannot connect as a node; use a node certificate")
            }
            registerNode(identity.name, connection: connection)
        case TunnelProtocol.operatorALPN:
            guard verifiedBy.label == TunnelProtocol.operatorCALabel, identity.role == .operator else {
                return Failure(TunnelErrorCode.wrongRole, "certificate of \(identity.role.rawValue) \(identity.name) cannot connect as an operator; use an operator certificate")
            }
            connections[ObjectIdentifier(connection)] = .operator(identity.name, connection)
            logger.info("operator connected", metadata: ["operator.name": "\(identity.name)", "peer.address": "\(connection.remoteAddress)"])
        default:
            return Failure(TunnelErrorCode.wrongRole, "unknown application protocol")
        }
        return nil
    }

    public func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        switch connections[ObjectIdentifier(connection)] {
        case .node(let name, _):
            receiveAnnouncement(from: name, connection: connection, stream: stream, metadata: metadata)
        case .operator(let name, _):
            handleOperatorRequest(from: name, connection: connection, stream: stream, metadata: metadata, interactive: interactive)
        case .unclassified, nil:
            connection.reset(stream, code: .refusedStream)
        }
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let peer = connections.removeValue(forKey: ObjectIdentifier(connection))
        if case .node(let name, _) = peer, nodes[name]?.connection === connection {
            nodes[name]?.connection = nil
            nodes[name]?.lastDisconnectReason = failure.code == .keepaliveTimeout
                ? "network lost (no keepalive answer)" : "disconnected: \(failure.reason)"
            logger.info("node disconnected", metadata: ["node.name": "\(name)", "reason": "\(failure)"])
        }
        finishStopIfDrained()
    }
}
