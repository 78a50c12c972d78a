import Foundation
import Multiplex
import TunnelEdgeCore
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// One edge node: its own key and certificate, its own source address, one session with
/// keepalives, an announcement, the `echo` and `sink` services. It reconnects as `tunnel client`
/// does, on the client's own `ReconnectSchedule` (full-jitter backoff from 0.5 s to 30 s that
/// starts over once the gateway accepted the announcement). A flap drops the session without a
/// word (as a cut link would, but with the TCP FIN the kernel sends) and redials after
/// `downtime`. Loop-confined.
final class VirtualNode: MuxConnectionDelegate {
    let index: Int
    private let context: LoopContext
    private let board: NodeBoard
    private let identity: TLSIdentity
    private let gatewayCA: Certificate
    private let source: SocketAddress
    private var tls: TLSContext?
    private var connection: MuxConnection?
    private var reconnect = ReconnectSchedule()
    private let retryTimer: LoopTimer
    private var dialStartedNanos: UInt64 = 0
    private var isAdmitted = false
    /// The TLS handshake of the current dial finished.
    private var handshakeDone = false
    private var flapping = false
    private var stopped = false

    init(
        index: Int, context: LoopContext, board: NodeBoard, identity: TLSIdentity, gatewayCA: Certificate,
        source: SocketAddress
    ) {
        self.index = index
        self.context = context
        self.board = board
        self.identity = identity
        self.gatewayCA = gatewayCA
        self.source = source
        retryTimer = LoopTimer(loop: context.loop)
    }

    /// Dials after `milliseconds` (a ramp spreads a fleet's first connects).
    func start(after milliseconds: UInt64) {
        guard milliseconds > 0 else { return dial() }
        retryTimer.start(after: milliseconds) { [self] in dial() }
    }

    private func dial() {
        guard !stopped else { return }
        do {
            if tls == nil {
                var configuration = TLSConfiguration(
                    role: .client, identity: identity,
                    peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: gatewayCA)]),
                    applicationProtocols: [TunnelProtocol.nodeALPN])
                if context.target.resumes { configuration.resumption = .keepSessions }
                tls = try TLSContext(configuration: configuration)
            }
        } catch {
            context.stats.error("node TLS context: \(error)")
            return
        }
        dialStartedNanos = monotonicNanos()
        handshakeDone = false
        // The keepalive of `tunnel client` (a PING every 30 s), so an idle fleet costs the gateway what a real one does.
        context.dial(from: source, context: tls!, session: NodeKeepalive.session, delegate: self) { [self] result in
            switch result {
            case .success(let started): connection = started
            case .failure(let failure):
                context.stats.update { $0.dialFailures += 1 }
                context.stats.error("node dial: \(failure.message.replacingOccurrences(of: source.ip, with: "SOURCE"))")
                retry()
            }
        }
    }

    private func retry() {
        guard !stopped else { return }
        let delay: UInt64
        if flapping {
            flapping = false
            delay = flapDowntimeMilliseconds
        } else {
            delay = reconnect.delayAfterLoss(now: context.loop.now).wholeMilliseconds
        }
        retryTimer.start(after: delay) { [self] in dial() }
    }

    private var flapDowntimeMilliseconds: UInt64 = 1000

    /// Drops the session now (no GOAWAY) and redials after `downtime` seconds.
    func flap(downtime: Double) {
        guard let connection, isAdmitted, !stopped else { return }
        flapping = true
        flapDowntimeMilliseconds = UInt64(downtime * 1000)
        context.stats.update { $0.flaps += 1 }
        connection.close(Failure(.cancel, "flapped by the simulator"))
    }

    /// Ends the session with a GOAWAY and stays away.
    func stop() {
        stopped = true
        retryTimer.close()
        connection?.abort(Failure(.noError, "simulator stopping"))
    }

    // MARK: MuxConnectionDelegate

    func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        handshakeDone = true
        let announcement = NodeAnnouncement(
            labels: [:], services: ["echo", "sink"], version: "fleet-sim", bootID: "fleet-sim-\(index)",
            uptimeSeconds: 1)
        // As the client does: the gateway's accepting the announcement starts the backoff over.
        let handler = DiscardingHandler(connection: connection) { [unowned self] in
            reconnect.accepted(now: context.loop.now)
        }
        do {
            handler.stream = try connection.openStream(
                metadata: TunnelProtocol.encode(NodeRequest.announce(announcement)), interactive: false,
                handler: handler)
            connection.finish(handler.stream)
        } catch {
            context.stats.error("node announce: \(error)")
        }
        return nil
    }

    func connectionReady(_ connection: MuxConnection) {
        isAdmitted = true
        board.connected(index)
        context.stats.nodeReady(index: index, dialNanos: dialStartedNanos, nowNanos: monotonicNanos())
    }

    func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        let request = TunnelProtocol.decode(ServiceRequest.self, from: metadata)
        let handler: StreamHandler
        switch request?.service {
        case "echo": handler = EchoService(connection: connection, stream: stream, stats: context.stats)
        case "sink": handler = SinkService(connection: connection, stream: stream, stats: context.stats)
        default:
            context.stats.error("node asked for an unknown service: \(request?.service ?? "unreadable request")")
            connection.reset(stream, code: TunnelErrorCode.unknownService)
            return
        }
        do {
            try connection.accept(stream, handler: handler)
            context.stats.update { $0.servedByNodes[request!.service, default: 0] += 1 }
        } catch {
            context.stats.error("node accept: \(error)")
        }
    }

    func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}

    func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        self.connection = nil
        if isAdmitted {
            isAdmitted = false
            board.disconnected(index, flapped: flapping)
            context.stats.update {
                $0.online -= 1
                $0.sessionsLost += 1
            }
        } else if !handshakeDone, connection.tlsFailure?.code == .truncated {
            // Closed without a TLS reply: the gateway's admission refused the handshake before any
            // TLS work (docs/TUNNEL.md §7), as it does in a burst of connects; the node retries.
            context.stats.update {
                $0.dialFailures += 1
                $0.doorRefusals += 1
            }
        } else {
            context.stats.update { $0.dialFailures += 1 }
            // The reason names the gateway's address (one for the whole fleet) and the TLS error,
            // never this node's own, so sentences of the same cause are counted together.
            context.stats.error(
                "node session failed before the gateway admitted it: \(TunnelErrorCode.name(failure.code)): "
                    + failure.reason.replacingOccurrences(of: source.ip, with: "SOURCE"))
        }
        retry()
    }
}
