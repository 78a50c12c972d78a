import TunnelWire

/// The gateway's view of one node seen in this run: its live session, if any, and what it said
/// about itself. At most one live session per node: the newest authenticated one wins.
package struct NodeRecord<ID: Hashable> {
    package let name: String
    /// The live session; nil while the node is offline.
    package internal(set) var connection: ID?
    /// Bumped for every new session (or the cluster's epoch), so streams never go to a stale one.
    package internal(set) var epoch = 0
    package internal(set) var announcement: NodeAnnouncement?
    package internal(set) var remoteAddress = ""
    /// Unix seconds the live session started.
    package internal(set) var connectedSince: Double?
    package internal(set) var lastDisconnectReason: String?
    package internal(set) var lastBootID: String?
    /// How the session before the live one ended, as the node list shows it.
    package internal(set) var previousSessionEnded: String?
    var takeovers = TakeoverWatch()

    init(name: String) {
        self.name = name
    }

}
