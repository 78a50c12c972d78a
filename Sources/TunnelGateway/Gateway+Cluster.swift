import Multiplex
import TunnelAudit
import TunnelPolicy
import TunnelRuntime
import TunnelState
import TunnelTLS
import TunnelText

// What a replica does for the rest of its cluster (docs/CLUSTER.md): closing a session that a
// newer one elsewhere superseded, and applying the revocations and policies of other replicas
// exactly as if they had been made here. `ClusterSync` decides when.
extension Gateway {
    /// The largest policy text taken from the change feed; a policy file is a few KiB.
    static let maxClusterPolicyBytes = 1 << 20

    /// A newer session of `node` started on another replica: the local one is stale (one live
    /// session per node, cluster-wide) and closes the way a replaced session does here.
    func fenceNode(_ node: String, newerOn replica: String?) {
        guard let connection = liveSession(of: node) else { return }
        let elsewhere = replica.map { "on replica \($0)" } ?? "on another replica"
        logger.notice(
            "node connected to another replica; closing its older session here",
            metadata: ["node.name": "\(node)", "replica": "\(replica ?? "?")"])
        connection.abort(Failure(TunnelErrorCode.replaced, "replaced by a newer session of \(node) \(elsewhere)"))
    }

    /// Applies another replica's change: its revocation ends the sessions here too, its new
    /// policy applies here too.
    func applyClusterChange(_ change: FleetChange) {
        switch change.kind {
        case .nodeCut:
            guard NameKind.node.accepts(change.subject) else { return ignoreChange(change) }
            carryOut(.disconnectNode(change.subject, reason: InertText.escape(change.detail)))
        case .operatorCut:
            guard NameKind.user.accepts(change.subject) else { return ignoreChange(change) }
            carryOut(.disconnectOperator(change.subject, reason: InertText.escape(change.detail)))
        case .policy:
            adoptPolicy(change)
        }
    }

    /// Takes a policy another replica loaded, checked like a local file; an invalid one (which
    /// that replica would not have published) leaves the policy in force.
    private func adoptPolicy(_ change: FleetChange) {
        let bytes = Array(change.detail.utf8)
        let version = Self.policyVersion(bytes)
        guard version != authority.policy.version else { return }
        let source = "replica \(InertText.escape(change.replica))"
        guard bytes.count <= Self.maxClusterPolicyBytes else {
            logger.error(
                "policy from another replica not applied: larger than \(Self.maxClusterPolicyBytes) bytes",
                metadata: ["replica": "\(source)"])
            return
        }
        do {
            let policy = try Policy.parse(bytes, source: source, version: version)
            let previous = authority.policy.version
            authority.replacePolicy(policy)
            logger.notice(
                "policy taken from another replica",
                metadata: ["policy.version": "\(version)", "policy.previous": "\(previous)", "replica": "\(source)"])
            audit?.record(
                .policyReload(
                    PolicyReload(outcome: .ok, policyVersion: version, previousVersion: previous, file: source)))
        } catch {
            logger.error(
                "policy from another replica not applied; the previous one stays in force",
                metadata: ["replica": "\(source)", "error": "\(error.message)"])
            audit?.record(
                .policyReload(
                    PolicyReload(
                        outcome: .invalid, policyVersion: authority.policy.version, reason: error.message, file: source)
                ))
        }
    }

    private func ignoreChange(_ change: FleetChange) {
        logger.warning(
            "ignored a cluster change naming an invalid subject",
            metadata: ["change.sequence": "\(change.sequence)", "change.kind": "\(change.kind.rawValue)"])
    }
}
