import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelIO
import TunnelRuntime
import TunnelTLS
import TunnelText

// Operators' streams to nodes held by another replica of a cluster: carried over the peer link
// to that replica (ALPN tunnel-peer/1, one mutual-TLS link per replica pair, multiplexed), which
// opens them on its node's session. Policy and audit happen once, at the operator's replica.
extension Gateway {
    /// What carries an operator's stream to `node` now; dials its replica's link when needed.
    func carrier(for node: String) -> StreamCarrier<ObjectIdentifier> {
        if let local = liveSession(of: node), !local.isEnding { return .local(ObjectIdentifier(local)) }
        guard let peering else { return .none(nil) }
        let now = loop.now
        let route = StreamRoute.decide(
            localSession: nil, presence: peering.presence.presence(of: node), replica: peering.replicaName,
            peerReachable: { peering.links.isReachable($0, now: now) }, now: authority.now)
        guard case .peer(let replica, let address) = route else {
            if case .offline(let reason) = route { return .none(reason) }
            return .none(nil)
        }
        // A link the other replica dialed serves both ways: one link per pair.
        for id in core.peerLinks(of: replica) {
            guard let inbound = connections[id]?.connection, !inbound.isEnding else { continue }
            return .peer(replica: replica, link: ObjectIdentifier(inbound))
        }
        switch peering.links.use(replica, address: address, now: now) {
        case .send(let link) where !link.isEnding: return .peer(replica: replica, link: ObjectIdentifier(link))
        case .send: return .none("the link to replica \(replica) is closing")
        case .dial(let address):
            dialPeer(replica, address: address)
            return .dialing(replica: replica)
        case .wait: return .dialing(replica: replica)
        case .unavailable: return .none("the node is held by replica \(replica), which this replica cannot reach now")
        }
    }

    /// Before an operator's stream is decided: when its node's replica is being dialed, the
    /// request waits for the link (bounded) and runs again then; true when it waits.
    func awaitPeerLink(node: String, retry: @escaping () -> Void) -> Bool {
        guard let peering, core.liveSession(of: node) == nil, NameKind.node.accepts(node),
            case .dialing(let replica) = carrier(for: node)
        else { return false }
        return peering.wait(for: replica, retry: retry)
    }

    // MARK: - Dialing a peer

    /// Dials `replica` at its advertised `address` and starts the TLS handshake with this
    /// replica's gateway-peer identity; `peerLinkUp` or `peerLinkDown` follows.
    private func dialPeer(_ replica: String, address: String) {
        do {
            _ = try Resolver.resolve(address, loop: loop) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let addresses) where !addresses.isEmpty:
                    connectPeer(replica, to: addresses[0])
                case .success:
                    peerLinkDown(replica, reason: "\(address) resolved to no address")
                case .failure(let error):
                    peerLinkDown(replica, reason: "cannot resolve \(address): \(error)")
                }
            }
        } catch {
            peerLinkDown(replica, reason: "bad advertised address \(address): \(error)")
        }
    }

    private func connectPeer(_ replica: String, to address: SocketAddress) {
        do {
            var pending: StreamConnection?
            pending = try StreamConnection.connect(
                loop: loop, to: address, timeoutMilliseconds: configuration.handshakeTimeout.wholeMilliseconds
            ) { [weak self] result in
                guard let self, let socket = pending else {
                    pending?.close()
                    return
                }
                pending = nil
                switch result {
                case .success: startPeerLink(replica, on: socket)
                case .failure(let error): peerLinkDown(replica, reason: "cannot connect to \(address): \(error)")
                }
            }
        } catch {
            peerLinkDown(replica, reason: "cannot connect to \(address): \(error)")
        }
    }

    private func startPeerLink(_ replica: String, on socket: StreamConnection) {
        guard let peering else { return socket.close() }
        let connection: MuxConnection
        do {
            connection = MuxConnection(
                loop: loop, socket: socket,
                tls: try TLSConnection(context: try peerTLSContext(peering), serverHost: gatewayServerName),
                role: .dialer, configuration: configuration.session, handshakeTimeout: configuration.handshakeTimeout,
                buffers: buffers, logger: logger)
        } catch {
            socket.close()
            return peerLinkDown(replica, reason: "cannot start TLS: \(error)")
        }
        connection.delegate = self
        peering.dials[ObjectIdentifier(connection)] = replica
        opened(connection)
        connection.start()
    }

    /// A fresh gateway-peer certificate for each dial, from the node CA every replica holds, so
    /// it never needs renewing; it lives as long as a node's.
    private func peerTLSContext(_ peering: PeerRouting) throws -> TLSContext {
        let key = try PrivateKey.generateP256()
        let validity = try CertificateValidity(now: authority.now, lifetime: configuration.nodeCertificateLifetime)
        let certificate = try configuration.nodeCA.issueClientCertificate(
            for: try key.publicKey(), identity: try TunnelIdentity(role: .gateway, name: peering.replicaName),
            validity: validity)
        return try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: TLSIdentity(chain: [certificate], key: key),
                peerVerification: .trustedCAs([TrustedCA(.node, certificate: configuration.nodeCA.certificate)]),
                applicationProtocols: [TunnelProtocol.peerALPN]))
    }

    /// The name our own gateway certificate carries first: every replica presents that shared
    /// certificate, so it is the name a peer's is checked for.
    private var gatewayServerName: String {
        for name in configuration.identity.chain[0].subjectAlternativeNames {
            switch name {
            case .dns(let host), .ipAddress(let host): return host
            case .uri, .other: continue
            }
        }
        return "localhost"
    }

    /// An outbound link finished its handshake: it is a replica only if it presented the
    /// cluster's shared gateway certificate. Nil when `connection` is not an outbound link.
    func outboundPeerEstablished(_ connection: MuxConnection) -> Failure?? {
        let key = ObjectIdentifier(connection)
        guard let peering, let replica = peering.dials.removeValue(forKey: key) else { return nil }
        guard connection.peerCertificate?.sha256Fingerprint == configuration.identity.chain[0].sha256Fingerprint else {
            peerLinkDown(replica, reason: "it did not present this cluster's gateway certificate")
            return .some(
                Failure(TunnelErrorCode.wrongRole, "not a replica of this cluster: another gateway certificate"))
        }
        enact(core.peerAuthenticated(key, replica: replica, certificate: nil))
        peering.links.dialed(replica, link: connection)
        logger.info("peer link up", metadata: ["replica": "\(replica)", "peer.address": "\(connection.remoteAddress)"])
        for retry in peering.takeWaiting(for: replica) { retry() }
        return .some(nil)
    }

    /// A peer link (or a dial of one) closed: an outbound one backs off before the next dial.
    func peerLinkClosed(_ connection: MuxConnection, failure: Failure) {
        guard let peering else { return }
        let key = ObjectIdentifier(connection)
        if let replica = peering.dials.removeValue(forKey: key) {
            return peerLinkDown(replica, reason: failure.reason)
        }
        if case .peer(let replica)? = core.connections[key]?.role,
            case .up(let current) = peering.links.state(of: replica), current === connection
        {
            peerLinkDown(replica, reason: failure.reason)
        }
    }

    private func peerLinkDown(_ replica: String, reason: String) {
        guard let peering else { return }
        logger.notice("peer link down", metadata: ["replica": "\(replica)", "reason": "\(reason)"])
        peering.links.failed(replica, now: loop.now)
        for retry in peering.takeWaiting(for: replica) { retry() }
    }

    // MARK: - The holder's side

    /// Another replica asks to open a stream on a node held here: open it and relay, with no
    /// second policy check or open record (the asking replica did both).
    func handlePeerRequest(
        from replica: String, connection: MuxConnection, stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        guard let peering, let ask = TunnelProtocol.decode(PeerStreamRequest.self, from: metadata) else {
            return connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
        do throws(NameProblem) {
            try Names.check(ask.node, as: .node)
            try Names.check(ask.request.service, as: .service)
        } catch {
            return refuseStream(stream, on: connection, code: TunnelErrorCode.badRequest, message: error.message)
        }
        guard let nodeConnection = liveSession(of: ask.node), !nodeConnection.isEnding else {
            let sentence = TunnelErrorCode.explain(
                Failure(TunnelErrorCode.unknownNode, ""), node: ask.node, service: ask.request.service)
            return refuseStream(
                stream, on: connection, code: TunnelErrorCode.unknownNode,
                message: "\(sentence) (its session on replica \(peering.replicaName) has ended)")
        }
        guard nodeConnection.canOpenStream, peering.relayed < PeerRouting.maxRelayedStreams else {
            return refuseStream(
                stream, on: connection, code: TunnelErrorCode.nodeBusy,
                message: TunnelErrorCode.busy(node: ask.node, open: core.openStreams(on: ask.node)))
        }
        let logMetadata: Logger.Metadata = [
            "replica": "\(replica)", "node.name": "\(ask.node)", "operator.name": "\(InertText.escape(ask.operator))",
            "stream": "\(InertText.escape(ask.stream))",
        ]
        let relay = StreamRelay(first: (connection, stream), secondConnection: nodeConnection) {
            [unowned self] relay, outcome in
            switch outcome {
            case .accepted(let metadata):
                do {
                    try connection.accept(stream, metadata: metadata)
                } catch {
                    nodeConnection.reset(relay.second.stream, code: .cancel)
                }
            case .ended(let failure):
                relays[ObjectIdentifier(relay)] = nil
                peering.relayed -= 1
                logger.debug(
                    "peer stream ended",
                    metadata: logMetadata.merging(["reason": "\(failure.map { "\($0)" } ?? "finished")"]) { $1 })
            }
        }
        do {
            try relay.openSecond(metadata: TunnelProtocol.encode(ask.request), interactive: interactive)
        } catch {
            return connection.reset(stream, code: .refusedStream)
        }
        connection.attach(relay.first, to: stream)
        relays[ObjectIdentifier(relay)] = relay
        peering.relayed += 1
        logger.debug("peer stream open", metadata: logMetadata)
    }
}
