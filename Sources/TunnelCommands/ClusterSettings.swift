import TunnelGateway
import TunnelText

extension GatewaySettings {
    /// This gateway's identity as a cluster replica, from `replica-name` and `advertise`: both or
    /// neither, and both on a shared `postgres://` store (whose replicas must tell themselves
    /// apart). Nil for a lone gateway on SQLite, which runs as it always did.
    func replicaIdentity() throws(CommandFailure) -> ReplicaIdentity? {
        let example = "e.g. --replica-name gw-1 --advertise 10.0.0.5:7443; on Kubernetes the pod's name and IP"
        switch (replicaName, advertise) {
        case (nil, nil):
            guard store == nil else {
                throw .usage(
                    "a gateway on a shared store is a cluster replica: set replica-name (unique among the replicas) and advertise (the HOST:PORT the other replicas dial), \(example)",
                    .configInvalid)
            }
            return nil
        case (let name?, let address?):
            guard NameKind.node.accepts(name) else {
                throw .usage(
                    "replica-name \"\(InertText.escape(name))\" is not a DNS label: \(NameKind.node.rule)",
                    .configInvalid)
            }
            guard !["0.0.0.0", "::"].contains(address.host) else {
                throw .usage(
                    "advertise \(address) is not an address other replicas can dial; give this replica's own IP or DNS name, \(example)",
                    .configInvalid)
            }
            return ReplicaIdentity(name: name, advertise: address.description)
        case (nil, _), (_, nil):
            throw .usage("replica-name and advertise go together: set both, \(example)", .configInvalid)
        }
    }
}
