import TunnelAudit
import TunnelMetrics
import TunnelText

// The gateway's side of its metrics: the gauges read from its tables at each scrape, readiness,
// and the counters taken from the audit records it writes at every decision (a record is the
// decision's one written trace, so the counts and the log cannot disagree).
extension Gateway {
    /// The `/metrics` body now.
    public func metricsExposition() -> [UInt8] {
        var kinds: [String: Int] = [:]
        for peer in connections.values {
            switch peer {
            case .node: kinds["node", default: 0] += 1
            case .operator: kinds["operator", default: 0] += 1
            case .enrolling: kinds["enrolling", default: 0] += 1
            case .peer: kinds["peer", default: 0] += 1
            case .unclassified: kinds["handshake", default: 0] += 1
            }
        }
        let expiry = [
            "gateway": configuration.identity.chain.first?.notAfter, "node_ca": configuration.nodeCA.certificate.notAfter,
            "operator_ca": configuration.operatorCA.certificate.notAfter,
        ].compactMapValues { $0 }
        return metrics.exposition(.init(
            nodesOnline: nodes.values.filter { $0.connection != nil }.count, connections: kinds, streamsOpen: relays.count,
            certificateExpiry: expiry, auditWritable: audit?.isHealthy ?? true, admissionRefusals: admission.refusalTotals))
    }

    /// Why the gateway cannot serve now, one short reason each; empty when it can (`/readyz`).
    public func unreadiness() -> [String] {
        var reasons: [String] = []
        if !isListening { reasons.append("not listening") }
        // One indexed lookup of a name no operator can have: reaches the database, reads nothing.
        do { _ = try authority.store.user(named: "") } catch { reasons.append("store unreachable: \(InertText.escape(error.message))") }
        if let failure = audit?.failure { reasons.append("audit log not writable: \(InertText.escape(failure))") }
        return reasons
    }
}

extension GatewayMetrics {
    /// Counts what an audit record of `type` says was decided (docs/AUDIT.md lists the types).
    func observe(_ type: String, _ fields: [String: AuditValue?]) {
        func text(_ key: String) -> String? { if case .string(let value)?? = fields[key] { value } else { nil } }
        func number(_ key: String) -> Int64 { if case .int(let value)?? = fields[key] { value } else { 0 } }
        switch type {
        case "node_connect": handshake(kind: "node", admitted: true)
        case "operator_connect": handshake(kind: "operator", admitted: true)
        case "connection_refused":
            handshake(kind: text("node") != nil ? "node" : "operator", admitted: false)
            refusal("credential-refused")
        case "enroll", "reenroll": enrollment(type, outcome: text("outcome") ?? "ok")
        case "renew": renewal(outcome: text("outcome") ?? "ok")
        case "stream_open": streamOpened(service: text("service") ?? "none", outcome: "ok")
        case "stream_deny": streamOpened(service: text("service") ?? "none", outcome: text("outcome") ?? "denied")
        case "stream_summary":
            // Refusals past an operator's record budget are summed, not recorded one by one.
            if case .object(let counts)?? = fields["counts"] {
                for (outcome, count) in counts { streamOpened(service: "other", outcome: outcome, count: Int(count) ?? 0) }
            }
        case "stream_close": relayed(toNode: number("bytes_to_node"), fromNode: number("bytes_from_node"))
        default: break
        }
    }
}
