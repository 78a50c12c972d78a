import Logging
import Multiplex
import TunnelAudit
import TunnelText
import TunnelWire

// Node sessions in the core: a node's newest authenticated session takes its place (the older
// one is replaced, with a new epoch), what a node announces about itself, and how it left.
extension GatewayCore {
    /// The live session of `node` on this gateway, if any.
    package func liveSession(of node: String) -> ID? {
        nodes[node]?.connection
    }

    /// A node's certificate was accepted by the fleet store: this session becomes the node's
    /// live one, replacing any older one. `clusterEpoch` is the epoch the cluster's store gave
    /// it (nil for a lone gateway, or when the store was unreachable: then the local count goes on).
    package mutating func nodeAuthenticated(
        _ id: ID, certificate: PeerCertificate, clusterEpoch: Int64?, now: Moment
    ) -> [Intent] {
        guard let connection = connections[id] else { return [] }
        let name = certificate.name
        var node = nodes[name] ?? NodeRecord(name: name)
        var intents: [Intent] = []
        if let stale = node.connection {
            intents += takeOver(&node, stale: stale, by: connection.remoteAddress, now: now)
        }
        node.connection = id
        node.epoch = clusterEpoch.map { Int($0) } ?? node.epoch + 1
        node.remoteAddress = connection.remoteAddress
        node.connectedSince = now.unix
        node.previousSessionEnded = node.lastDisconnectReason
        nodes[name] = node
        authenticate(id, as: .node(name), certificate: certificate)
        return intents + [
            .nodeSeen(name, NodeSighting(at: now.unixSeconds, address: connection.remoteAddress)),
            .record(
                .nodeConnect(
                    connection.auditPeer,
                    NodeConnect(node: name, nodeSerial: certificate.serial, epoch: Int64(node.epoch)))),
            .log(
                .info, "node connected",
                [
                    "node.name": "\(name)", "peer.address": "\(connection.remoteAddress)",
                    "node.epoch": "\(node.epoch)",
                ]),
        ]
    }

    /// A newer session of the node replaces `stale`, which is told so and closed; a node whose
    /// sessions keep replacing each other is reported, as two machines sharing one key.
    private mutating func takeOver(
        _ node: inout NodeRecord<ID>, stale: ID, by address: String, now: Moment
    ) -> [Intent] {
        let name = node.name
        let staleAddress = connections[stale]?.remoteAddress ?? "?"
        let addresses: Logger.Metadata = [
            "node.name": "\(name)", "peer.address": "\(address)", "old.address": "\(staleAddress)",
        ]
        connections[stale]?.role = .replaced(name)
        var intents: [Intent] = [.log(.notice, "node reconnected; replacing its older session", addresses)]
        if let peer = connections[stale]?.auditPeer {
            intents.append(
                .record(
                    .nodeDisconnect(
                        peer, NodeDisconnect(node: name, reason: "replaced by a newer session", replacedBy: address))))
        }
        intents.append(
            .abort(stale, Failure(TunnelErrorCode.replaced, "replaced by a newer session of \(name) from \(address)")))
        node.lastDisconnectReason =
            "replaced by a newer session from \(address) (the replaced one was from \(staleAddress))"
        if let count = node.takeovers.recordTakeover(now: now.loop) {
            var metadata = addresses
            metadata["takeovers"] = "\(count) within \(TakeoverWatch.windowMilliseconds / 1000) s"
            intents.append(
                .log(
                    .warning,
                    "one node identity is in use on two machines: their sessions keep replacing each other; give each machine its own node key",
                    metadata))
        }
        if node.takeovers.isFlapping(now: now.loop) {
            node.lastDisconnectReason! += "; sessions keep replacing each other: two machines may share this node's key"
        }
        return intents
    }

    /// The node's session ended; if it was the live one, the node is offline now.
    mutating func nodeSessionEnded(
        _ name: String, _ id: ID, failure: Failure, peer: AuditPeer, now: Moment
    ) -> [Intent] {
        let reason =
            failure.code == .keepaliveTimeout ? "network lost (no keepalive answer)" : "disconnected: \(failure.reason)"
        var intents: [Intent] = []
        if nodes[name]?.connection == id {
            nodes[name]?.connection = nil
            nodes[name]?.lastDisconnectReason = reason
            intents += [
                .presenceEnded(node: name),
                .nodeSeen(name, NodeSighting(at: now.unixSeconds, disconnectReason: reason)),
                .log(.info, "node disconnected", ["node.name": "\(name)", "reason": "\(failure)"]),
            ]
        }
        return intents + [.record(.nodeDisconnect(peer, NodeDisconnect(node: name, reason: reason)))]
    }

    /// Why a node's announcement was refused.
    package enum AnnouncementRefusal: Error, Equatable {
        /// Not from the node's live session.
        case notLive
        /// A service or label breaks the name rules; the sentence says which.
        case badName(String)
    }

    /// A node says what it serves and who it is; kept for the node list. Only the live session
    /// may, and its names must follow the rules: operators read them.
    package mutating func announced(_ id: ID, _ announcement: NodeAnnouncement) -> AnnouncementRefusal? {
        guard case .node(let name) = connections[id]?.role, var node = nodes[name], node.connection == id else {
            return .notLive
        }
        do throws(NameProblem) {
            for service in announcement.services { try Names.check(service, as: .service) }
            try Names.checkLabels(announcement.labels)
        } catch {
            return .badName(error.message)
        }
        if let lastBoot = node.lastBootID, lastBoot != announcement.bootID {
            node.previousSessionEnded =
                "node rebooted (up \(Int(announcement.uptimeSeconds)) s); before that: \(node.previousSessionEnded ?? "first session")"
        }
        node.lastBootID = announcement.bootID
        node.announcement = announcement
        nodes[name] = node
        return nil
    }

    /// A removed node leaves no trace in this run's view either.
    package mutating func forgetNode(_ name: String) {
        nodes[name] = nil
    }
}
