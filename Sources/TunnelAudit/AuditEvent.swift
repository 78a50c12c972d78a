/// One audit record's event: its type and named fields, one case per record type of
/// docs/AUDIT.md. The gateway writes these, and `tunnel audit` and the console read them back,
/// so the three cannot drift apart by a spelling.
///
/// A case's payloads are flat: their fields together are the record's event fields (`fields`).
/// A record of a type this version does not know (a newer writer's, or another caller's, §3.3)
/// reads back as `.unknown`, as do records whose fields do not fit their type's payload.
public enum AuditEvent: Sendable, Equatable {
    // The log's own records (§4): readers see them, callers cannot append them.
    case segmentStart(SegmentStart)
    case checkpoint(Checkpoint)
    case recovery(Recovery)
    case writeResumed(WriteResumed)

    case gatewayStart(GatewayStart)
    case gatewayStop(GatewayStop)
    case policyReload(PolicyReload)
    case nodeConnect(AuditPeer, NodeConnect)
    case nodeDisconnect(AuditPeer, NodeDisconnect)
    case operatorConnect(AuditOperator)
    case operatorDisconnect(AuditPeer, OperatorDisconnect)
    case peerConnect(AuditPeer, PeerLink)
    case peerDisconnect(AuditPeer, PeerLink)
    case connectionRefused(AuditPeer, ConnectionRefused)
    case enroll(AuditPeer, Enrollment)
    case reenroll(AuditPeer, Enrollment)
    case nodeRenew(AuditPeer, Renewal)
    case operatorRenew(AuditOperator, Renewal)
    case enrollRefused(EnrollmentSource, RefusalSummary)
    case streamSummary(OperatorName, RefusalSummary)
    /// An administration request; `by` is nil for the local admin socket.
    case admin(AdminRecordType, by: AuditOperator?, AdminAction)

    /// Its parties always have a target.
    case streamOpen(StreamRequestParties, StreamGrant)
    /// The parties' target is nil when the request was refused before its names were checked.
    case streamDeny(StreamRequestParties, StreamGrant, StreamDenial)
    case streamClose(StreamParties, StreamClose)
    case kubeRequest(StreamParties, KubeAPIRequest)

    case unknown(type: String, fields: [String: AuditValue])

    /// The record type, the `type` field.
    public var type: String {
        switch self {
        case .segmentStart: "segment_start"
        case .checkpoint: "checkpoint"
        case .recovery: "recovery"
        case .writeResumed: "write_resumed"
        case .gatewayStart: "gateway_start"
        case .gatewayStop: "gateway_stop"
        case .policyReload: "policy_reload"
        case .nodeConnect: "node_connect"
        case .nodeDisconnect: "node_disconnect"
        case .operatorConnect: "operator_connect"
        case .operatorDisconnect: "operator_disconnect"
        case .peerConnect: "peer_connect"
        case .peerDisconnect: "peer_disconnect"
        case .connectionRefused: "connection_refused"
        case .enroll: "enroll"
        case .reenroll: "reenroll"
        case .nodeRenew, .operatorRenew: "renew"
        case .enrollRefused: "enroll_refused"
        case .streamSummary: "stream_summary"
        case .admin(let type, _, _): type.rawValue
        case .streamOpen: "stream_open"
        case .streamDeny: "stream_deny"
        case .streamClose: "stream_close"
        case .kubeRequest: "kube_request"
        case .unknown(let type, _): type
        }
    }

    /// The event fields: every field of the record but `seq`, `prev`, `time` and `type`.
    public var fields: [String: AuditValue] {
        if case .unknown(_, let fields) = self { return fields }
        return payloads.reduce(into: [:]) { fields, payload in fields.merge(EventFieldCoder.encode(payload)) { $1 } }
    }

    /// The payloads whose fields make up the record, in no particular order.
    private var payloads: [any Encodable] {
        switch self {
        case .segmentStart(let start): [start]
        case .checkpoint(let checkpoint): [checkpoint]
        case .recovery(let recovery): [recovery]
        case .writeResumed(let resumed): [resumed]
        case .gatewayStart(let start): [start]
        case .gatewayStop(let stop): [stop]
        case .policyReload(let reload): [reload]
        case .nodeConnect(let peer, let payload as any Encodable),
            .nodeDisconnect(let peer, let payload as any Encodable),
            .operatorDisconnect(let peer, let payload as any Encodable),
            .peerConnect(let peer, let payload as any Encodable),
            .peerDisconnect(let peer, let payload as any Encodable),
            .connectionRefused(let peer, let payload as any Encodable),
            .enroll(let peer, let payload as any Encodable), .reenroll(let peer, let payload as any Encodable),
            .nodeRenew(let peer, let payload as any Encodable):
            [peer, payload]
        case .operatorConnect(let actor): [actor]
        case .operatorRenew(let actor, let renewal): [actor, renewal]
        case .enrollRefused(let source, let summary): [source, summary]
        case .streamSummary(let name, let summary): [name, summary]
        case .admin(_, let actor, let action): [actor as (any Encodable)?, action].compactMap { $0 }
        case .streamOpen(let parties, let grant): [parties, grant]
        case .streamDeny(let parties, let grant, let denial): [parties, grant, denial]
        case .streamClose(let parties, let close): [parties, close]
        case .kubeRequest(let parties, let request): [parties, request]
        case .unknown: []
        }
    }
}

extension AuditEvent {
    /// The node the record is about, if it names one: for a node's timeline.
    public var node: String? {
        switch self {
        case .nodeConnect(_, let connect): connect.node
        case .nodeDisconnect(_, let disconnect): disconnect.node
        case .connectionRefused(_, let refused): refused.node
        case .enroll(_, let enrollment), .reenroll(_, let enrollment): enrollment.node
        case .nodeRenew(_, let renewal), .operatorRenew(_, let renewal): renewal.node
        case .admin(_, _, let action): action.node
        case .streamOpen(let parties, _), .streamDeny(let parties, _, _): parties.target?.node
        case .streamClose(let parties, _), .kubeRequest(let parties, _): parties.node
        case .unknown(_, let fields): if case .string(let node)? = fields["node"] { node } else { nil }
        default: nil
        }
    }
}
