import Foundation
import TunnelRuntime
import TunnelState

// The node list operators and admins read: the enrolled nodes in the store with the live view
// merged in, a page at a time (`tunnel nodes`, `tunnel node ls`), or whole (tests).
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

    /// One page of the nodes `roles` can reach (every node when nil, for admins), by name after
    /// `after`: at most `limit` (capped at `NodeList.maximumPage`), and where the next page
    /// starts, nil after the last. Reads the store a batch at a time, so a page costs what its
    /// nodes cost, not the whole fleet; a small page (doctor's one node) still reads in batches
    /// of `nodeReadBatch`, so skipping nodes the roles cannot reach takes few reads.
    func nodePage(visibleToRoles roles: [String]?, after: String?, limit: Int?) -> (
        [NodeStatus], next: String?
    ) {
        let size = min(max(limit ?? NodeList.maximumPage, 1), NodeList.maximumPage)
        let batch = max(size, Self.nodeReadBatch)
        let view = NodeView(self)
        var page: [NodeStatus] = []
        var cursor = after
        // Each read moves the cursor on, so this ends.
        while page.count < size {
            guard let entries = try? authority.store.nodes(after: cursor, limit: batch), !entries.isEmpty else {
                return (page, nil)
            }
            for entry in entries {
                // Full before this batch is used up: the next page starts after the last one taken.
                guard page.count < size else { return (page, cursor) }
                cursor = entry.name
                if let status = view.status(entry, visibleToRoles: roles) { page.append(status) }
            }
            if entries.count < batch { return (page, nil) }
        }
        return (page, cursor)
    }

    /// The fewest stored nodes one read of `nodePage` asks for.
    static let nodeReadBatch = 100
}

/// What the node list merges into the stored entries, taken once per list.
private struct NodeView {
    let gateway: Gateway
    /// In a cluster, a node held by another replica is online there while its lease lives.
    let heldElsewhere: [String: Presence]

    init(_ gateway: Gateway) {
        self.gateway = gateway
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
            lastKeepaliveSecondsAgo: session.map { Double($0.silence.wholeMilliseconds) / 1000 },
            version: record?.announcement?.version ?? "",
            previousSessionEnded: record.map {
                $0.connection == nil ? $0.lastDisconnectReason : $0.previousSessionEnded
            } ?? entry.lastDisconnectReason,
            certificateNotAfter: entry.certificateNotAfter, lastSeen: entry.lastSeen, revokedAt: entry.revokedAt)
    }
}
