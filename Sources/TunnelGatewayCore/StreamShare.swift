/// Each operator's share of a node's streams: no operator may hold more than
/// `streamsPerOperatorPerNode` of one node's streams, and the last `adminReservedStreamsPerNode`
/// of a node's streams are for admins only, so one operator (or all of them together) can never
/// lock an admin out of a node. Decisions, not actions: `GatewayCore` refuses what it is told.
package struct StreamShare {
    package enum Decision: Equatable {
        case admit
        /// The node has no stream left for this operator: `open` streams are open on it.
        case nodeBusy(open: Int)
        /// This operator already holds `open` of the node's streams, its whole budget.
        case operatorBudget(open: Int)
    }

    let limits: StreamLimits
    /// Open streams per node, per operator.
    private var open: [String: [String: Int]] = [:]

    package init(limits: StreamLimits) {
        self.limits = limits
    }

    package func openStreams(on node: String) -> Int {
        open[node]?.values.reduce(0, +) ?? 0
    }

    /// Whether `operatorName` may open one more stream to `node`, which accepts `nodeCapacity`
    /// streams at once. Admins are held only to the node's capacity.
    package func decide(node: String, operatorName: String, isAdmin: Bool, nodeCapacity: Int) -> Decision {
        let total = openStreams(on: node)
        let available = isAdmin ? nodeCapacity : nodeCapacity - limits.adminReservedStreamsPerNode
        guard total < available else { return .nodeBusy(open: total) }
        let mine = open[node]?[operatorName] ?? 0
        guard isAdmin || mine < limits.streamsPerOperatorPerNode else { return .operatorBudget(open: mine) }
        return .admit
    }

    package mutating func opened(node: String, operatorName: String) {
        open[node, default: [:]][operatorName, default: 0] += 1
    }

    package mutating func closed(node: String, operatorName: String) {
        guard let count = open[node]?[operatorName] else { return }
        open[node]?[operatorName] = count > 1 ? count - 1 : nil
        if open[node]?.isEmpty == true { open[node] = nil }
    }
}
