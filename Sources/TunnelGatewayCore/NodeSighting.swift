/// A node's connect or disconnect, to be written to the fleet store (`lastSeen`, its address,
/// why it left). Two sightings of one node in one loop turn merge as if applied in order.
package struct NodeSighting: Equatable, Sendable {
    package var at: Int64
    package var address: String?
    package var disconnectReason: String?

    package init(at: Int64, address: String? = nil, disconnectReason: String? = nil) {
        self.at = at
        self.address = address
        self.disconnectReason = disconnectReason
    }

    package func followed(by later: NodeSighting) -> NodeSighting {
        NodeSighting(
            at: later.at, address: later.address ?? address,
            disconnectReason: later.disconnectReason ?? disconnectReason)
    }
}
