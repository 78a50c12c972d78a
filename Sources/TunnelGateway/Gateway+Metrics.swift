import TunnelAudit
import TunnelMetrics
import TunnelText

// The gateway's side of its metrics: the gauges read from its tables at each scrape, readiness,
// and the counters taken from the audit records it writes at every decision (a record is the
// decision's one written trace, so the counts and the log cannot disagree).
extension Gateway {
    /// The `/metrics` body now.
    public func metricsExposition() -> [UInt8] {
        let expiry = [
            "gateway": configuration.identity.chain.first?.notAfter,
            "node_ca": configuration.nodeCA.certificate.notAfter,
            "operator_ca": configuration.operatorCA.certificate.notAfter,
        ].compactMapValues { $0 }
        return metrics.exposition(
            .init(
                nodesOnline: core.nodes.values.filter { $0.connection != nil }.count,
                connections: core.connectionKinds,
                streamsOpen: relays.count,
                certificateExpiry: expiry, auditWritable: audit?.isHealthy ?? true,
                admissionRefusals: admission.refusalTotals))
    }

    /// Why the gateway cannot serve now, one short reason each; empty when it can (`/readyz`).
    public func unreadiness() -> [String] {
        var reasons: [String] = []
        if !isListening { reasons.append("not listening") }
        // One indexed lookup of a name no operator can have: reaches the database, reads nothing.
        do { _ = try authority.store.user(named: "") } catch {
            reasons.append("store unreachable: \(InertText.escape(error.message))")
        }
        if let failure = audit?.failure { reasons.append("audit log not writable: \(InertText.escape(failure))") }
        return reasons
    }
}

extension GatewayMetrics {
    /// Counts what an audit record says was decided (docs/AUDIT.md lists the types).
    func observe(_ event: AuditEvent) {
        switch event {
        case .nodeConnect: handshake(kind: "node", admitted: true)
        case .operatorConnect: handshake(kind: "operator", admitted: true)
        case .connectionRefused(_, let refused):
            handshake(kind: refused.node != nil ? "node" : "operator", admitted: false)
            refusal("credential-refused")
        case .enroll(_, let record), .reenroll(_, let record): enrollment(event.type, outcome: record.outcome)
        case .nodeRenew(_, let record), .operatorRenew(_, let record): renewal(outcome: record.outcome.rawValue)
        case .streamOpen(let parties, _): streamOpened(service: parties.target?.service ?? "none", outcome: "ok")
        case .streamDeny(let parties, _, let denial):
            streamOpened(service: parties.target?.service ?? "none", outcome: denial.outcome)
        case .streamSummary(_, let summary):
            // Refusals past an operator's record budget are summed, not recorded one by one.
            for (outcome, count) in summary.counts {
                streamOpened(service: "other", outcome: outcome, count: Int(count) ?? 0)
            }
        case .streamClose(_, let close): relayed(toNode: close.bytesToNode ?? 0, fromNode: close.bytesFromNode ?? 0)
        default: break
        }
    }
}
