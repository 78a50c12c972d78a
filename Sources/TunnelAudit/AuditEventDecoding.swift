extension AuditEvent {
    /// Reads the event of a record of `type` from its event fields. `extra` gets the fields the
    /// type's payloads do not name (a newer writer's additions), so that `fields` of the event
    /// and `extra` together are exactly the record's fields again.
    public init(type: String, fields: [String: AuditValue], extra: inout [String: AuditValue]) {
        var consumed: Set<String> = []
        do {
            self = try Self.decode(type: type, fields: fields, consumed: &consumed)
        } catch {
            self = .unknown(type: type, fields: fields)
        }
        if case .unknown = self { consumed = Set(fields.keys) }
        extra = fields.filter { !consumed.contains($0.key) }
    }

    /// Reads the event, ignoring fields its type does not name.
    public init(type: String, fields: [String: AuditValue]) {
        var extra: [String: AuditValue] = [:]
        self.init(type: type, fields: fields, extra: &extra)
    }

    private static func decode(type: String, fields: [String: AuditValue], consumed: inout Set<String>) throws
        -> AuditEvent
    {
        func read<T: Decodable>(_: T.Type = T.self) throws -> T {
            try EventFieldCoder.decode(T.self, from: fields, consumed: &consumed)
        }
        /// A payload whose fields may all be absent; partly present is an error.
        func readIfPresent<T: Decodable>(_: T.Type, key: String) throws -> T? {
            fields[key] == nil ? nil : try read(T.self)
        }
        if let admin = AdminRecordType(rawValue: type) {
            return .admin(admin, by: try readIfPresent(AuditOperator.self, key: "operator"), try read())
        }
        switch type {
        case "segment_start": return .segmentStart(try read())
        case "checkpoint": return .checkpoint(try read())
        case "recovery": return .recovery(try read())
        case "write_resumed": return .writeResumed(try read())
        case "gateway_start": return .gatewayStart(try read())
        case "gateway_stop": return .gatewayStop(try read())
        case "policy_reload": return .policyReload(try read())
        case "node_connect": return .nodeConnect(try read(), try read())
        case "node_disconnect": return .nodeDisconnect(try read(), try read())
        case "operator_connect": return .operatorConnect(try read())
        case "operator_disconnect": return .operatorDisconnect(try read(), try read())
        case "peer_connect": return .peerConnect(try read(), try read())
        case "peer_disconnect": return .peerDisconnect(try read(), try read())
        case "connection_refused": return .connectionRefused(try read(), try read())
        case "enroll": return .enroll(try read(), try read())
        case "reenroll": return .reenroll(try read(), try read())
        case "renew":
            return fields["operator"] == nil
                ? .nodeRenew(try read(), try read()) : .operatorRenew(try read(), try read())
        case "enroll_refused": return .enrollRefused(try read(), try read())
        case "stream_summary": return .streamSummary(try read(), try read())
        case "stream_open":
            return .streamOpen(StreamRequestParties(actor: try read(), target: try read(StreamTarget.self)), try read())
        case "stream_deny":
            let parties = StreamRequestParties(
                actor: try read(), target: try readIfPresent(StreamTarget.self, key: "stream"))
            return .streamDeny(parties, try read(), try read())
        case "stream_close": return .streamClose(try read(), try read())
        case "kube_request": return .kubeRequest(try read(), try read())
        default: return .unknown(type: type, fields: fields)
        }
    }
}
