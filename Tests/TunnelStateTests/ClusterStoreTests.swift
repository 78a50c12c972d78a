import Testing
import TunnelState

/// The cluster tables (replicas, presence, change feed) behave the same on both stores, and two
/// connections to one database (two replicas) see each other's writes.
@Suite("Cluster store")
struct ClusterStoreTests {
    let now = Sample.now

    @Test(arguments: StoreKind.tested) func heartbeatsRecordAndUpdateReplicas(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        #expect(try store.replicas() == [])
        try store.heartbeat(replica: "r2", advertise: "10.0.0.2:7443", now: now)
        try store.heartbeat(replica: "r1", advertise: "10.0.0.1:7443", now: now)
        try store.heartbeat(replica: "r2", advertise: "10.0.0.9:7443", now: now + 5)
        #expect(
            try store.replicas() == [
                ReplicaEntry(name: "r1", advertise: "10.0.0.1:7443", heartbeatAt: now),
                ReplicaEntry(name: "r2", advertise: "10.0.0.9:7443", heartbeatAt: now + 5),
            ])
    }

    @Test(arguments: StoreKind.tested) func epochsGrowAcrossReplicasAndTheNewestClaimWins(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let first = try fresh.open(), second = try fresh.open()
        try first.heartbeat(replica: "r1", advertise: "10.0.0.1:7443", now: now)
        try second.heartbeat(replica: "r2", advertise: "10.0.0.2:7443", now: now)

        #expect(try first.claimPresence(node: "edge-1", replica: "r1", leaseUntil: now + 15) == 1)
        #expect(
            try second.presence(of: "edge-1", now: now)
                == Presence(node: "edge-1", replica: "r1", advertise: "10.0.0.1:7443", epoch: 1, leaseUntil: now + 15))
        // The node reconnects through the other replica: the epoch grows there, and r1's renewal
        // no longer lists the node, which is r1's cue to close its stale session.
        #expect(try second.claimPresence(node: "edge-1", replica: "r2", leaseUntil: now + 16) == 2)
        #expect(try first.renewLeases(replica: "r1", until: now + 20) == [:])
        #expect(try second.renewLeases(replica: "r2", until: now + 20) == ["edge-1": 2])
        #expect(try first.presence(of: "edge-1", now: now)?.replica == "r2")
        // The stale holder's release changes nothing; the holder's own does.
        #expect(try first.releasePresence(node: "edge-1", replica: "r1", epoch: 1) == false)
        #expect(try first.presence(of: "edge-1", now: now)?.epoch == 2)
        #expect(try second.releasePresence(node: "edge-1", replica: "r2", epoch: 2) == true)
        #expect(try first.presence(of: "edge-1", now: now) == nil)
        // Released stays released through renewals, and the next session still gets a newer epoch.
        #expect(try second.renewLeases(replica: "r2", until: now + 30) == [:])
        #expect(try first.claimPresence(node: "edge-1", replica: "r1", leaseUntil: now + 15) == 3)
    }

    @Test(arguments: StoreKind.tested) func leasesExpireUnlessRenewed(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        _ = try store.claimPresence(node: "edge-a", replica: "r1", leaseUntil: now + 15)
        _ = try store.claimPresence(node: "edge-b", replica: "r1", leaseUntil: now + 15)
        _ = try store.claimPresence(node: "edge-c", replica: "r2", leaseUntil: now + 15)
        #expect(try store.presences(now: now).map(\.node) == ["edge-a", "edge-b", "edge-c"])
        // The lease ends at its instant: a reader at leaseUntil sees nobody.
        #expect(try store.presence(of: "edge-a", now: now + 15) == nil)
        #expect(try store.renewLeases(replica: "r1", until: now + 30) == ["edge-a": 1, "edge-b": 1])
        // A replica that never heartbeated is listed with no address.
        #expect(
            try store.presences(now: now + 20).map { "\($0.node)@\($0.replica)\($0.advertise)" } == [
                "edge-a@r1", "edge-b@r1",
            ])
        // A restarted r1 first ends what its previous run held.
        #expect(try store.releaseAll(replica: "r1") == 2)
        #expect(try store.presences(now: now).map(\.node) == ["edge-c"])
        #expect(try store.renewLeases(replica: "r1", until: now + 45) == [:])
    }

    @Test(arguments: StoreKind.tested) func theChangeFeedIsReadInOrderFromWhereAReaderLeftOff(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let writer = try fresh.open(), reader = try fresh.open()
        #expect(try reader.latestChange() == 0)
        let one = try writer.appendChange(
            .nodeCut, subject: "edge-1", detail: "revoked by alice", replica: "r2", now: now)
        let two = try writer.appendChange(
            .operatorCut, subject: "bob", detail: "revoked by alice", replica: "r2", now: now + 1)
        let three = try writer.appendChange(
            .policy, subject: "abc123", detail: "roles: {}\n", replica: "r1", now: now + 2)
        #expect(one < two && two < three)
        #expect(try reader.latestChange() == three)
        #expect(
            try reader.changes(after: 0, limit: 2) == [
                FleetChange(
                    sequence: one, kind: .nodeCut, subject: "edge-1", detail: "revoked by alice", replica: "r2",
                    recordedAt: now),
                FleetChange(
                    sequence: two, kind: .operatorCut, subject: "bob", detail: "revoked by alice", replica: "r2",
                    recordedAt: now + 1),
            ])
        #expect(try reader.changes(after: two, limit: 10).map(\.kind) == [.policy])
        #expect(try reader.changes(after: three, limit: 10) == [])
        // Pruning drops what is older, but never the newest change: the feed's end stays known.
        #expect(try writer.pruneChanges(recordedBefore: now + 1) == 1)
        #expect(try reader.changes(after: 0, limit: 10).map(\.sequence) == [two, three])
        #expect(try writer.pruneChanges(recordedBefore: now + 100) == 1)
        #expect(try reader.latestChange() == three)
    }
}
