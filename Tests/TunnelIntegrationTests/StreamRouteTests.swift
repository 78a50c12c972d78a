import Testing

@testable import TunnelGateway

/// Issue #13: where a stream goes in a cluster, decided from this replica's session, the store's
/// presence record and the time.
@Suite struct StreamRouteTests {
    private let now: Int64 = 1_800_000_000
    private func presence(_ replica: String, epoch: Int64 = 2, leaseLeft: Int64 = 10) -> NodePresence {
        NodePresence(
            replica: replica, advertise: "\(replica).example:7443", epoch: epoch, leaseExpires: now + leaseLeft)
    }

    @Test("a local session wins unless a newer live session elsewhere fenced it")
    func localSession() {
        let reachable: (String) -> Bool = { _ in true }
        #expect(
            StreamRoute.decide(localSession: 3, presence: nil, replica: "r1", peerReachable: reachable, now: now)
                == .local)
        #expect(
            StreamRoute.decide(
                localSession: 3, presence: presence("r1", epoch: 3), replica: "r1", peerReachable: reachable, now: now)
                == .local)
        #expect(
            StreamRoute.decide(
                localSession: 3, presence: presence("r2", epoch: 2), replica: "r1", peerReachable: reachable, now: now)
                == .local)
        #expect(
            StreamRoute.decide(
                localSession: 3, presence: presence("r2", epoch: 4), replica: "r1", peerReachable: reachable, now: now)
                == .peer(replica: "r2", address: "r2.example:7443"))
        #expect(
            StreamRoute.decide(
                localSession: 3, presence: presence("r2", epoch: 4, leaseLeft: 0), replica: "r1",
                peerReachable: reachable, now: now) == .local)
    }

    @Test(
        "no local session: the live holder's peer link, or offline when the lease ran out, the holder is us, or its link is down"
    )
    func elsewhere() {
        #expect(
            StreamRoute.decide(
                localSession: nil, presence: presence("r2"), replica: "r1", peerReachable: { _ in true }, now: now)
                == .peer(replica: "r2", address: "r2.example:7443"))
        for (record, reachable) in [
            (presence("r2", leaseLeft: 0), true), (presence("r1"), true), (presence("r2"), false),
        ] {
            guard
                case .offline = StreamRoute.decide(
                    localSession: nil, presence: record, replica: "r1", peerReachable: { _ in reachable }, now: now)
            else {
                Issue.record("\(record) with the link \(reachable ? "up" : "down") is not offline")
                continue
            }
        }
        guard
            case .offline = StreamRoute.decide(
                localSession: nil, presence: nil, replica: "r1", peerReachable: { _ in true }, now: now)
        else {
            Issue.record("no record is not offline")
            return
        }
    }
}
