import Testing
import TunnelState

@testable import TunnelGateway

/// The presence decisions on a virtual clock: claims, renewals every `renewSeconds`, fencing of
/// superseded sessions, release of orphaned leases; and the change-feed cursor.
@Suite("Presence ledger")
struct PresenceLedgerTests {
    let start: Int64 = 1_750_000_000

    @Test func renewalsFallDueEveryFiveSecondsFromTheFirstTick() {
        var ledger = PresenceLedger()
        let renew = PresenceLedger.renewSeconds
        // A loop that stalled (start + 60) renews once when it wakes, not once per missed period.
        let times = [start, start + 1, start + renew - 1, start + renew, start + renew + 4, start + 60, start + 61]
        let due = times.map { ledger.renewalDue(now: $0) }
        #expect(due == [true, false, false, true, false, true, false])
        // The lease outlives two missed renewals.
        #expect(ledger.leaseEnd(now: start) - start > 2 * PresenceLedger.renewSeconds)
    }

    @Test func aClaimThatDidNotReachTheStoreIsRetriedAndReleasesNothing() {
        var ledger = PresenceLedger()
        ledger.sessionStarted(node: "edge-b")
        ledger.sessionStarted(node: "edge-a")
        #expect(ledger.unclaimed == ["edge-a", "edge-b"])
        ledger.claimed(node: "edge-a", epoch: 4)
        #expect(ledger.unclaimed == ["edge-b"])
        let released = ["edge-b", "edge-a", "edge-a"].map { ledger.sessionEnded(node: $0) }
        #expect(released == [nil, 4, nil])
        // A claim answered after its session ended is not taken up.
        ledger.claimed(node: "edge-a", epoch: 5)
        #expect(ledger.sessions.isEmpty)
    }

    @Test func aSessionSupersededElsewhereIsFencedAndForgotten() {
        var ledger = PresenceLedger()
        for (epoch, node) in ["edge-a", "edge-b", "edge-c"].enumerated() {
            ledger.sessionStarted(node: node)
            ledger.claimed(node: node, epoch: Int64(epoch + 1))
        }
        ledger.sessionStarted(node: "edge-d")
        // edge-a still ours; edge-b taken by a newer session elsewhere (gone from what we hold);
        // edge-c: our row holds another epoch, so not this session. edge-d is pending: not judged.
        let outcome = ledger.renewed(stillHeld: ["edge-a": 1, "edge-c": 9])
        #expect(outcome.superseded == ["edge-b", "edge-c"])
        #expect(outcome.orphaned == [:])
        let releasedOnClose = ledger.sessionEnded(node: "edge-b")
        #expect(releasedOnClose == nil, "a fenced session's close releases nothing")
        #expect(ledger.sessions == ["edge-a": .held(epoch: 1), "edge-d": .pending])
    }

    @Test func leasesWithNoLocalSessionAreReleased() {
        var ledger = PresenceLedger()
        ledger.sessionStarted(node: "edge-a")
        ledger.claimed(node: "edge-a", epoch: 2)
        // edge-z's release failed while the store was down: the store still renews it for us.
        let outcome = ledger.renewed(stillHeld: ["edge-a": 2, "edge-z": 7])
        #expect(outcome == PresenceLedger.RenewalOutcome(superseded: [], orphaned: ["edge-z": 7]))
    }

    @Test func theCursorSkipsWhatItSawAndWhatThisReplicaMade() {
        var cursor = ChangeFeedCursor(startingAfter: 10)
        func change(_ sequence: Int64, by replica: String) -> FleetChange {
            FleetChange(
                sequence: sequence, kind: .nodeCut, subject: "edge-\(sequence)", detail: "revoked", replica: replica,
                recordedAt: start)
        }
        let read = cursor.read(
            [change(9, by: "r2"), change(11, by: "r2"), change(12, by: "r1"), change(13, by: "r3")], replica: "r1")
        #expect(read.map(\.sequence) == [11, 13])
        #expect(cursor.lastSequence == 13)
        let nothing = cursor.read([], replica: "r1")
        #expect(nothing == [])
        #expect(cursor.lastSequence == 13)
    }

    @Test func aFailingStoreIsCalledAgainAfterGrowingPauses() {
        var retry = StoreRetry()
        #expect(retry.mayCall(now: start))
        var pauses: [Int64] = []
        var now = start
        for _ in 0..<6 {
            retry.failed(now: now)
            let waited = (now...(now + 60)).first { retry.mayCall(now: $0) }! - now
            pauses.append(waited)
            now += waited
        }
        #expect(pauses == [1, 2, 4, 8, 15, 15])
        retry.succeeded()
        #expect(retry.mayCall(now: now))
    }
}
