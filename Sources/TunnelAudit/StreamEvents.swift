// The payloads of the records of streams (docs/AUDIT.md §3.4, §10).

/// What an operator asked to open: the stream's key, the node and service, and the policy it
/// was decided by.
public struct StreamTarget: Codable, Sendable, Equatable {
    /// `SESSION/ID`.
    public var stream: String
    public var node: String
    public var service: String
    public var parameters: [String: String]?
    public var policyVersion: String
    public init(stream: String, node: String, service: String, parameters: [String: String]?, policyVersion: String) {
        self.stream = stream
        self.node = node
        self.service = service
        self.parameters = parameters
        self.policyVersion = policyVersion
    }
}

/// What the gateway decided for a stream before it opened or refused it; every field is set
/// only once that step was reached.
public struct StreamGrant: Codable, Sendable, Equatable {
    /// The policy rule that allowed it.
    public var rule: String?
    /// The identity a `kubernetes` stream acts as.
    public var kubeUser: String?
    public var kubeGroups: [String]?
    /// A shell's recording, the file under `recordings/`.
    public var recording: String?
    /// In a cluster: the replica holding the node, through whose peer link the stream went.
    public var viaReplica: String?
    public init(
        rule: String? = nil, kubeUser: String? = nil, kubeGroups: [String]? = nil, recording: String? = nil,
        viaReplica: String? = nil
    ) {
        self.rule = rule
        self.kubeUser = kubeUser
        self.kubeGroups = kubeGroups
        self.recording = recording
        self.viaReplica = viaReplica
    }
}

public struct StreamDenial: Codable, Sendable, Equatable {
    /// `denied`, `unavailable`, `bad_request`, `audit_unavailable`, `busy`, `rate_limited`, `throttled`.
    public var outcome: String
    /// The sentence the operator read.
    public var reason: String
    public init(outcome: String, reason: String) {
        self.outcome = outcome
        self.reason = reason
    }
}

/// Who asked for a stream and for what, as its `stream_open` and `stream_deny` name them: the
/// operator (as at connect, with the roles the request was decided with) and the target. Only a
/// `stream_deny` of a request refused before its names were checked has no target.
public struct StreamRequestParties: Encodable, Sendable, Equatable {
    public var actor: AuditOperator
    public var target: StreamTarget?
    public init(actor: AuditOperator, target: StreamTarget?) {
        self.actor = actor
        self.target = target
    }

    /// The fields of both, flat in the record.
    public func encode(to encoder: any Encoder) throws {
        try actor.encode(to: encoder)
        try target?.encode(to: encoder)
    }
}

/// The stream and the parties of a `stream_close` or `kube_request`, copied from its
/// `stream_open`.
public struct StreamParties: Codable, Sendable, Equatable {
    public var stream: String
    public var session: String?
    public var operatorName: String?
    public var node: String?
    public var service: String?
    enum CodingKeys: String, CodingKey {
        case stream, session
        case operatorName = "operator"
        case node, service
    }
    public init(stream: String, session: String?, operatorName: String?, node: String?, service: String?) {
        self.stream = stream
        self.session = session
        self.operatorName = operatorName
        self.node = node
        self.service = service
    }
}

public struct StreamClose: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, AuditFieldValue {
        case closed, reset, refused
        /// Closed by the next start's recovery (docs/AUDIT.md §6).
        case gatewayCrash = "gateway_crash"
    }
    public var outcome: Outcome
    /// A stable code for a reset (docs/AUDIT.md §10), or a sentence.
    public var reason: String?
    public var detail: String?
    public var bytesToNode: Int64?
    public var bytesFromNode: Int64?
    public var durationMs: Int64?
    public var recording: String?
    public var recordingSha256: String?
    public var recordingBytes: Int64?
    public var recordingError: String?
    /// The `kube_request` records written for a `kubernetes` stream.
    public var kubeRequests: Int64?
    public init(outcome: Outcome, reason: String? = nil, detail: String? = nil) {
        self.outcome = outcome
        self.reason = reason
        self.detail = detail
    }
}

/// One Kubernetes API request relayed on a `kubernetes` stream (docs/AUDIT.md §3.4).
public struct KubeAPIRequest: Codable, Sendable, Equatable {
    public var kubeUser: String
    public var kubeGroups: [String]
    public var verb: String
    public var path: String
    public var apiGroup: String?
    public var resource: String?
    public var subresource: String?
    public var namespace: String?
    public var name: String?
    public var command: [String]?
    public var code: Int64?
    public init(kubeUser: String, kubeGroups: [String], verb: String, path: String) {
        self.kubeUser = kubeUser
        self.kubeGroups = kubeGroups
        self.verb = verb
        self.path = path
    }
}

extension StreamParties {
    /// The parties of a stream whose `stream_open` names `actor` and `target`.
    public init(actor: AuditOperator, target: StreamTarget) {
        self.init(
            stream: target.stream, session: actor.peer.session, operatorName: actor.name, node: target.node,
            service: target.service)
    }

    /// The parties a stream's open record names (its fields, as `AuditLog.unclosedStreams`
    /// returns them); those it lacks, or holds in another shape, stay nil.
    public init(stream: String, openFields: [String: AuditValue]) {
        var consumed: Set<String> = []
        let fields = openFields.merging(["stream": .string(stream)]) { $1 }
        self =
            (try? EventFieldCoder.decode(StreamParties.self, from: fields, consumed: &consumed))
            ?? StreamParties(stream: stream, session: nil, operatorName: nil, node: nil, service: nil)
    }
}
