import Multiplex
import Testing
import TunnelIO

@testable import TunnelRuntime

/// Issue #12: what waits below the scheduler is sized from the link, not fixed at 1 MiB.
@Suite struct TransmitQueueLimitTests {
    /// Feeds `seconds` of a link carrying `bytesPerSecond`, sampled every millisecond: the
    /// kernel's running count grows by a millisecond of the link each time (from `taken`).
    private func drive(
        _ limit: inout TransmitQueueLimit, bytesPerSecond: Int, seconds: Double, from start: UInt64 = 0,
        taken: inout Int, refused: Bool = true, roundTrip: Duration?, kernelRate: Double = 0
    ) -> UInt64 {
        var now = start
        for _ in 0..<Int(seconds * 1000) {
            now += 1_000_000
            taken += bytesPerSecond / 1000
            limit.flushEnded(
                refused ? .refused(afterDrain: true) : .tookAll, kernelTaken: taken, at: Timestamp(nanoseconds: now)
            ) {
                roundTrip.map { TCPPath(roundTrip: $0, deliveryRate: kernelRate, applicationLimited: !refused) }
            }
        }
        return now
    }

    /// `drive` from a count of zero.
    private func drive(
        _ limit: inout TransmitQueueLimit, bytesPerSecond: Int, seconds: Double, from start: UInt64 = 0,
        refused: Bool = true, roundTrip: Duration?, kernelRate: Double = 0
    ) -> UInt64 {
        var taken = 0
        return drive(
            &limit, bytesPerSecond: bytesPerSecond, seconds: seconds, from: start, taken: &taken, refused: refused,
            roundTrip: roundTrip, kernelRate: kernelRate)
    }

    @Test("a 20 Mbit/s link with a 10 ms round trip queues one round trip: 25 kB, not 1 MiB")
    func slowLink() {
        var limit = TransmitQueueLimit()
        _ = drive(&limit, bytesPerSecond: 2_500_000, seconds: 1, roundTrip: .milliseconds(10))
        #expect(limit.bytesPerSecond.map { abs($0 - 2_500_000) < 25_000 } == true)
        #expect(limit.highWater == 25_000)
        #expect(limit.recordSize == 6_250)
        // The kernel's share is 2 ms of the link, so a keystroke waits behind a few kB there.
        #expect((4_900...5_100).contains(limit.notSentLowWater) && limit.writeChunk == limit.notSentLowWater)
        // …which the kernel holds to only if every write starts a segment of its own.
        #expect(limit.endsEachWrite)
    }

    @Test("a fast link is held to the cap, a very short path to the floor")
    func floorAndCap() {
        var fast = TransmitQueueLimit()
        _ = drive(&fast, bytesPerSecond: 1_000_000_000, seconds: 0.5, roundTrip: .milliseconds(5))
        #expect(fast.highWater == TransmitQueueLimit.cap && fast.recordSize == 16 * 1024)
        #expect(fast.notSentLowWater == TransmitQueueLimit.largestNotSentLowWater && !fast.endsEachWrite)
        var short = TransmitQueueLimit()
        _ = drive(&short, bytesPerSecond: 2_500_000, seconds: 0.5, roundTrip: .microseconds(100))
        #expect(short.highWater == TransmitQueueLimit.floor && short.recordSize == 4 * 1024)
    }

    @Test("a fast short path (loopback) writes large chunks and full records, not a few KiB a turn")
    func fastShortPath() {
        var limit = TransmitQueueLimit()
        _ = drive(&limit, bytesPerSecond: 300_000_000, seconds: 0.5, roundTrip: .microseconds(50))
        #expect(limit.notSentLowWater == TransmitQueueLimit.largestNotSentLowWater)
        #expect(limit.highWater == 2 * TransmitQueueLimit.largestNotSentLowWater && limit.recordSize == 16 * 1024)
    }

    @Test("a sender that never fills its queue takes the kernel's delivery rate, which only raises the estimate")
    func applicationLimitedSenderUsesTheKernelsRate() {
        var loopback = TransmitQueueLimit()
        _ = drive(
            &loopback, bytesPerSecond: 50_000_000, seconds: 0.1, refused: false,
            roundTrip: .microseconds(30), kernelRate: 2_000_000_000)
        #expect(loopback.bytesPerSecond == 2_000_000_000)
        // A sample point with nothing more taken (an idle node's flush that only read) reads no path.
        var idle = TransmitQueueLimit()
        idle.flushEnded(.tookAll, kernelTaken: 0, at: Timestamp(nanoseconds: 1)) {
            Issue.record("read the path with nothing sent")
            return nil
        }
        #expect(loopback.notSentLowWater == TransmitQueueLimit.largestNotSentLowWater)
        // On a slow link the connection's own samples rule: a delivery rate read high for a
        // moment before them is replaced by the first, and ignored after it.
        var slow = TransmitQueueLimit()
        var later = drive(
            &slow, bytesPerSecond: 1000, seconds: 0.05, refused: false, roundTrip: .milliseconds(10),
            kernelRate: 50_000_000)
        #expect(slow.bytesPerSecond == 50_000_000)
        later = drive(&slow, bytesPerSecond: 2_500_000, seconds: 1, from: later, roundTrip: .milliseconds(10))
        let measured = slow.bytesPerSecond
        #expect(measured.map { abs($0 - 2_500_000) < 25_000 } == true)
        _ = drive(
            &slow, bytesPerSecond: 1000, seconds: 1, from: later, refused: false, roundTrip: .milliseconds(10),
            kernelRate: 10_000_000)
        #expect(slow.bytesPerSecond == measured)
    }

    @Test("before any measurement the queue is the floor, and a sample spans at least 10 ms")
    func startsAtFloor() {
        var limit = TransmitQueueLimit()
        #expect(limit.highWater == TransmitQueueLimit.floor)
        #expect(limit.notSentLowWater == TransmitQueueLimit.initialNotSentLowWater && !limit.endsEachWrite)
        _ = drive(&limit, bytesPerSecond: 100_000_000, seconds: 0.009, roundTrip: .milliseconds(10))
        #expect(limit.bytesPerSecond == nil && limit.highWater == TransmitQueueLimit.floor)
    }

    @Test("time the application had nothing to send says nothing about the link: the estimate stays")
    func applicationLimitedSpansAreDropped() {
        var limit = TransmitQueueLimit()
        let later = drive(&limit, bytesPerSecond: 2_500_000, seconds: 1, roundTrip: .milliseconds(10))
        let measured = limit.highWater
        _ = drive(
            &limit, bytesPerSecond: 1000, seconds: 1, from: later, refused: false, roundTrip: .milliseconds(10))
        #expect(limit.highWater == measured)
    }

    @Test("a very slow link keeps the kernel's share at one small record")
    func smallestKernelShare() {
        var limit = TransmitQueueLimit()
        _ = drive(&limit, bytesPerSecond: 100_000, seconds: 1, roundTrip: .milliseconds(50))
        #expect(limit.notSentLowWater == TransmitQueueLimit.smallestNotSentLowWater)
    }

    @Test("without the kernel's round-trip time the limit does not move")
    func noRoundTrip() {
        var limit = TransmitQueueLimit()
        _ = drive(&limit, bytesPerSecond: 100_000_000, seconds: 0.5, roundTrip: nil)
        #expect(limit.bytesPerSecond != nil && limit.highWater == TransmitQueueLimit.floor)
    }

    @Test("a turn cut short by its own budget, the kernel taking everything, is no sample: loopback stays unpaced")
    func budgetCutTurnsAreNoSample() {
        var limit = TransmitQueueLimit()
        var taken = 0
        let later = drive(
            &limit, bytesPerSecond: 300_000_000, seconds: 0.5, taken: &taken, roundTrip: .microseconds(50))
        let measured = limit.bytesPerSecond
        // Each turn the kernel took a budget's worth at once and nothing was refused.
        _ = drive(
            &limit, bytesPerSecond: 5_000_000, seconds: 1, from: later, taken: &taken, refused: false,
            roundTrip: .microseconds(50))
        #expect(limit.bytesPerSecond == measured)
        #expect(limit.notSentLowWater == TransmitQueueLimit.largestNotSentLowWater && !limit.endsEachWrite)
    }

    @Test("an idle pause between two refused spells is no link time: the estimate does not fall")
    func idlePausesAreNotBridged() {
        var limit = TransmitQueueLimit()
        var taken = 0
        var now = drive(&limit, bytesPerSecond: 2_500_000, seconds: 1, taken: &taken, roundTrip: .milliseconds(10))
        // The queue drained and the flush found nothing to send; then a second of silence.
        limit.flushEnded(.tookAll, kernelTaken: taken, at: Timestamp(nanoseconds: now)) { nil }
        now += 1_000_000_000
        now = drive(
            &limit, bytesPerSecond: 2_500_000, seconds: 0.02, from: now, taken: &taken, roundTrip: .milliseconds(10))
        #expect(limit.bytesPerSecond.map { abs($0 - 2_500_000) < 25_000 } == true)
        #expect(limit.highWater == 25_000)
    }

    @Test("a span lasts only while every sample point saw refused bytes")
    func spansNeedRefusalThroughout() {
        var limit = TransmitQueueLimit()
        var taken = 0
        var now: UInt64 = 0
        for step in 0..<1000 {
            now += 1_000_000
            taken += 100_000
            let end: TransmitQueueLimit.FlushEnd = step % 5 == 4 ? .tookAll : .refused(afterDrain: true)
            limit.flushEnded(end, kernelTaken: taken, at: Timestamp(nanoseconds: now)) { nil }
        }
        #expect(limit.bytesPerSecond == nil && limit.highWater == TransmitQueueLimit.floor)
    }

    @Test("a flush in the middle of a stall ends no sample: a sample ends only where the kernel has caught up")
    func samplesEndAfterADrain() {
        var limit = TransmitQueueLimit()
        func end(_ end: TransmitQueueLimit.FlushEnd, taken: Int, milliseconds: UInt64) {
            limit.flushEnded(end, kernelTaken: taken, at: Timestamp(nanoseconds: milliseconds * 1_000_000)) {
                TCPPath(roundTrip: .milliseconds(10), deliveryRate: 0, applicationLimited: false)
            }
        }
        end(.refused(afterDrain: false), taken: 16_000, milliseconds: 0)
        // A read's flush 15 ms on: the peer took nothing yet, and the bytes still wait.
        end(.refused(afterDrain: false), taken: 16_000, milliseconds: 15)
        #expect(limit.bytesPerSecond == nil)
        // The kernel took them all; the flush refilled the queue up to a refusal.
        end(.refused(afterDrain: true), taken: 66_000, milliseconds: 20)
        #expect(limit.bytesPerSecond == 2_500_000)
    }
}
