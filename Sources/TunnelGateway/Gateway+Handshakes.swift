import TunnelIO
import TunnelRuntime

// Carries out `HandshakeQueue`'s decisions: holds handshakes at their ClientHello and takes
// them up again, a budget's worth per loop turn, operators first.
extension Gateway {
    /// Called from a connection's ClientHello: true holds its handshake for a later turn.
    func holdsHandshake(_ connection: MuxConnection, offered: [String]) -> Bool {
        let goesOn = handshakes.arrived(
            ObjectIdentifier(connection), priority: Self.handshakePriority(offered), now: loop.now)
        scheduleHandshakeTurn()
        return !goesOn
    }

    /// The priority of a ClientHello by the first protocol it offers that the gateway serves,
    /// the one the server picks: operators, then certificate holders (nodes, peer gateways),
    /// then everyone else (enrollment, or nothing we serve, which the handshake refuses).
    static func handshakePriority(_ offered: [String]) -> HandshakeQueue<ObjectIdentifier>.Priority {
        for name in offered {
            switch name {
            case TunnelProtocol.operatorALPN: return .operator
            case TunnelProtocol.nodeALPN, TunnelProtocol.peerALPN: return .node
            case TunnelProtocol.enrollALPN: return .newcomer
            default: continue
            }
        }
        return .newcomer
    }

    /// The worker that takes handshakes after their ClientHello; nil when configured off, or
    /// when its threads cannot start (handshakes then run on the loop).
    func startHandshakeWorker() -> HandshakeWorker? {
        guard configuration.handshakeThreads > 0 else { return nil }
        do {
            return try HandshakeWorker(loop: loop, threads: configuration.handshakeThreads)
        } catch {
            logger.error(
                "cannot start the handshake worker; handshakes run on the loop", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// A handshake place came free (a handshake ended): connections waiting for one get it
    /// next turn.
    func handshakePlaceFreed() {
        if admission.parkedCount > 0 { scheduleHandshakeTurn() }
    }

    /// The next loop turn starts a new budget, gives free handshake places to connections
    /// waiting for one, and takes up the best waiting handshakes.
    private func scheduleHandshakeTurn() {
        guard !handshakeTurn.isActive, !handshakeTurn.isClosed else { return }
        handshakeTurn.start(after: 0) { [unowned self] in
            unparkHellos()
            for id in handshakes.release(now: loop.now) {
                connections[id]?.connection.resumeHandshake()
            }
            if handshakes.waitingCount > 0 { scheduleHandshakeTurn() }
        }
    }
}
