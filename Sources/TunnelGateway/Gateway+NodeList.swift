import Foundation
import TunnelRuntime
import TunnelState

// The node list operators and admins read: the enrolled nodes in the store with the live view
// merged in, whole (admins, tests) or a page at a time (`tunnel nodes`).
extension Gateway {
    /// Every node the gateway knows: the enrolled ones in the store, with the live view merged
    /// in. A removed node is gone from the store, so it is gone from here; labels are the
    /// recorded ones (token and admin), never what a node announces. Online first, then by
    /// name. `visibleToRoles` limits it to nodes those roles can reach.
    public func nodeStatuses(visibleToRoles roles: [String]? = nil) -> [NodeStatus] {
        let view = NodeView(self)
        return ((try? authority.store.nodes()) ?? []).compactMap { view.status($0, visibleToRoles: roles) }
            .sorted { ($0.online ? 0 : 1, $0.name) < ($1.online ? 0 : 1, $1.name) }
    }

    /// One page of the nodes `roles` can reach, by name after `after`: at most `limit` (capped at
    /// `NodeList.maximumPage`), and where the next page starts, nil after the last. Reads the
    /// store a page at a time, so a page costs what its nodes cost, not the whole fleet.
    func nodePage(visibleToRoles roles: [String], after: String?, limit: Int?) -> (
        [NodeStatus], next: String?
    ) {
        let size = min(max(limit ?? NodeList.maximumPage, 1), NodeList.maximumPage)
        let view = NodeView(self)
        var page: [NodeStatus] = []
        var cursor = after
        // Nodes the roles cannot reach are skipped; each read moves the cursor on, so this ends.
        while page.count < size {
            guard let entries = try? authority.store.nodes(after: cursor, limit: size), let last = entries.last else {
                return (page, nil)
            }
            for entry in entries where page.count < size {
                cursor = entry.name
                if let status = view.status(entry, visibleToRoles: roles) { page.append(status) }
            }
            if entries.count < size, cursor == last.name { return (page, nil) }
        }
        return (page, cursor)
    }
}

/// What the node list merges into the stored entries, taken once per list.
private struct NodeView {
    let gateway: Gateway
    let now: UInt64
    /// In a cluster, a node held by another replica is online there while its lease lives.
    let heldElsewhere: [String: Presence]

    init(_ gateway: Gateway) {
        self.gateway = gateway
        now = gateway.loop.now
        heldElsewhere =
            gateway.cluster.map { cluster in
                cluster.livePresences().filter { $0.value.replica != cluster.identity.name }
            } ?? [:]
    }

    func status(_ entry: NodeEntry, visibleToRoles roles: [String]?) -> NodeStatus? {
        let name = entry.name
        let record = gateway.core.nodes[name]
        let session = record?.connection.flatMap { gateway.connections[$0]?.connection }
        let labels = entry.labels
        if let roles, !gateway.authority.policy.canReachAnything(roles: roles, node: name, labels: labels) {
            return nil
        }
        let here = record?.connection != nil
        return NodeStatus(
            name: name, online: here || heldElsewhere[name] != nil,
            replica: here ? gateway.cluster?.identity.name : heldElsewhere[name]?.replica,
            labels: labels, services: record?.announcement?.services ?? [],
            remoteAddress: record?.remoteAddress ?? entry.lastAddress ?? "",
            connectedSince: here ? record?.connectedSince : nil,
            lastKeepaliveSecondsAgo: session?.lastPongAt.map { Double(now &- $0) / 1000 },
            version: record?.announcement?.version ?? "",
            previousSessionEnded: record.map {
                $0.connection == nil ? $0.lastDisconnectReason : $0.previousSessionEnded
            } ?? entry.lastDisconnectReason,
            certificateNotAfter: entry.certificateNotAfter, lastSeen: entry.lastSeen, revokedAt: entry.revokedAt)
    }
}
