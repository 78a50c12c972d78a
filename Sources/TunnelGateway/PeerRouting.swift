import Multiplex
import TunnelRuntime

/// Where the store says each node is held: the part of the cluster's presence records that peer
/// routing reads. The shared store's presence records answer it; tests give a table.
public protocol PresenceDirectory: AnyObject {
    /// The replica holding `node`'s newest session, with its lease; nil when none does.
    func presence(of node: String) -> NodePresence?
}

extension ClusterSync: PresenceDirectory {}

/// A replica's side of the cluster's peer links: its name, where it learns who holds a node,
/// its links to the other replicas (`PeerLinks`) and the streams waiting for a link being
/// dialed. The gateway carries it out (`Gateway+PeerRelay.swift`). Loop-confined.
public final class PeerRouting {
    /// This replica's name, in its gateway-peer identity (`tunnel://gateway/NAME`).
    public let replicaName: String
    let presence: PresenceDirectory
    var links = PeerLinks<MuxConnection>()
    /// Outbound links whose TLS handshake is under way, by connection: the replica each is for.
    var dials: [ObjectIdentifier: String] = [:]
    /// Operators' streams waiting for the link to a replica, run once it is up or has failed.
    var waiting: [String: [() -> Void]] = [:]
    /// Streams one replica's dial may hold waiting; later ones are refused at once.
    static let maxWaitingPerReplica = 256
    /// Opens of a stream through a peer link (a `PeerStreamRequest`) that this replica relays to
    /// its nodes at once, across all links; beyond it a peer's stream is refused as busy.
    static let maxRelayedStreams = 4_096
    /// Streams relayed here for other replicas, open now.
    var relayed = 0

    public init(replicaName: String, presence: PresenceDirectory) {
        self.replicaName = replicaName
        self.presence = presence
    }

    /// Keeps `retry` until the link to `replica` is up or failed; false when too many wait.
    func wait(for replica: String, retry: @escaping () -> Void) -> Bool {
        guard waiting[replica, default: []].count < Self.maxWaitingPerReplica else { return false }
        waiting[replica, default: []].append(retry)
        return true
    }

    /// The streams that waited for `replica`'s link, to be run now.
    func takeWaiting(for replica: String) -> [() -> Void] {
        waiting.removeValue(forKey: replica) ?? []
    }
}

/// What a replica asks of the replica holding a node, on a stream of their peer link: open
/// `request` on `node`'s session and relay. The asking replica checked the policy and wrote the
/// open record; `operator` and `stream` only name the stream in the holder's log.
struct PeerStreamRequest: Codable, Equatable {
    var node: String
    var request: ServiceRequest
    var `operator`: String
    /// The stream as the asking replica's audit records name it (`SESSION/STREAM`).
    var stream: String
}
