import Logging
import Multiplex
import TunnelAudit

/// One operator's request for a stream while the gateway decides it: who asked, for what, and
/// what was decided so far, as its audit records will name them.
package struct StreamRequest<ID: Hashable>: Equatable {
    /// The operator's connection and the stream it opened there.
    package let connection: ID
    package let stream: StreamID
    package let operatorName: String
    /// The operator's roles now (not at connect): a changed role applies to the next request.
    package let roles: [String]
    package let actor: AuditOperator
    package let target: StreamTarget
    package let interactive: Bool
    package internal(set) var grant = StreamGrant()
    package internal(set) var logMetadata: Logger.Metadata
    /// False beyond the operator's record budget: then nothing is recorded or logged one by one.
    package let recordedOneByOne: Bool

    /// The parties its `stream_open` or `stream_deny` names.
    package var requestParties: StreamRequestParties { StreamRequestParties(actor: actor, target: target) }
    /// The parties its `stream_close` and `kube_request` copy.
    package var parties: StreamParties { StreamParties(actor: actor, target: target) }

    /// Records which shell recording file the stream writes (the shell names and opens it).
    package mutating func recording(into file: String) {
        grant.recording = file
    }
}

/// What carries an operator's stream to a node, as the shell found it.
package enum StreamCarrier<ID: Hashable>: Equatable {
    /// The node's live session on this replica.
    case local(ID)
    /// The peer link to the replica holding the node.
    case peer(replica: String, link: ID)
    /// The link to `replica` is being dialed.
    case dialing(replica: String)
    /// Nothing can carry it now; the reason for the operator, if more is known than "offline".
    case none(String?)

    /// The connection the stream would be opened on.
    package var link: ID? {
        switch self {
        case .local(let id), .peer(_, let id): id
        case .dialing, .none: nil
        }
    }
}

/// The limits on one node's streams, from the gateway's settings.
package struct StreamLimits: Equatable, Sendable {
    /// Streams a node's session takes at once (the advertised stream cap).
    package var nodeCapacity: Int
    package var streamsPerOperatorPerNode: Int
    /// The last streams of a node, kept for admins.
    package var adminReservedStreamsPerNode: Int
    /// Resets a node's session tolerates per abuse window (`RelayedResetBudget`).
    package var nodeResetAllowance: Int
    /// Stream records one operator may cause per minute, and at once, for the sentence an
    /// operator past them reads (the shell keeps the budget).
    package var streamRecordsPerMinute: Int
    package var streamRecordBurst: Int

    package init(
        nodeCapacity: Int, streamsPerOperatorPerNode: Int, adminReservedStreamsPerNode: Int,
        nodeResetAllowance: Int, streamRecordsPerMinute: Int, streamRecordBurst: Int
    ) {
        self.nodeCapacity = nodeCapacity
        self.streamsPerOperatorPerNode = streamsPerOperatorPerNode
        self.adminReservedStreamsPerNode = adminReservedStreamsPerNode
        self.nodeResetAllowance = nodeResetAllowance
        self.streamRecordsPerMinute = streamRecordsPerMinute
        self.streamRecordBurst = streamRecordBurst
    }
}
