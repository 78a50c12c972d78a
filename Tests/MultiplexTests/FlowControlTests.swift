import Testing

@testable import Multiplex

@Suite("Flow control")
struct FlowControlTests {
    /// Credit after a grant, or nil when the grant must be refused as a flow-control error.
    @Test(
        "window arithmetic at the 31-bit boundary",
        arguments: [
            (UInt32(0), UInt32((1 << 31) - 2), Int64((1 << 31) - 2)),
            (0, (1 << 31) - 1, (1 << 31) - 1),
            (0, 1 << 31, nil),
            (0, UInt32.max, nil),
            (1, (1 << 31) - 2, (1 << 31) - 1),
            (1, (1 << 31) - 1, nil),
            ((1 << 31) - 2, 1, (1 << 31) - 1),
            ((1 << 31) - 1, 1, nil),
            ((1 << 31) - 1, UInt32.max, nil),
        ] as [(UInt32, UInt32, Int64?)])
    func sendCreditBoundaries(initial: UInt32, increment: UInt32, expected: Int64?) {
        var credit = SendCredit(initial: initial)
        do {
            try credit.grant(increment)
            #expect(credit.available == expected)
        } catch {
            #expect(expected == nil, "grant of \(increment) on \(initial) was refused")
            #expect(error.code == .flowControlError)
            #expect(credit.available == Int64(initial), "a refused grant leaves credit unchanged")
        }
    }

    @Test("receiving beyond the peer's credit is refused")
    func receiveBeyondCredit() throws {
        var window = ReceiveWindow(initial: 1000, max: 1000)
        try window.receive(999)
        try window.receive(1)
        #expect(throws: Failure.self) { try window.receive(1) }
    }

    @Test("updates wait until half the window is consumed, then return all of it")
    func updateThreshold() throws {
        var window = ReceiveWindow(initial: 1000, max: 1000)
        try window.receive(1000)
        window.consume(499)
        #expect(!window.wantsUpdate)
        window.consume(1)
        #expect(window.wantsUpdate)
        #expect(window.takeUpdate(now: .zero, roundTrip: nil) == 500)
        #expect(window.peerCredit == 500)
        window.consume(10_000) // more than held is clamped
        #expect(window.unconsumed == 0)
        #expect(window.takeUpdate(now: .zero, roundTrip: nil) == 500)
        #expect(window.peerCredit == 1000)
    }

    @Test("the window doubles when updates come faster than two round trips, up to its ceiling")
    func autoTuneGrows() throws {
        var window = ReceiveWindow(initial: 1 << 18, max: 1 << 24)
        let roundTrip = Duration.milliseconds(50)
        var now = Timestamp(nanoseconds: 1)
        var growths = 0
        for _ in 0..<40 {
            let before = window.window
            try window.receive(Int(window.peerCredit))
            window.consume(Int(window.unconsumed))
            _ = window.takeUpdate(now: now, roundTrip: roundTrip)
            if window.window > before { growths += 1 }
            now = now + .milliseconds(20) // faster than 2 × RTT: window-limited
        }
        #expect(window.window == 1 << 24)
        #expect(growths == 6) // 256 KiB → 16 MiB is six doublings
        #expect(window.peerCredit == 1 << 24)
    }

    @Test("a slow reader never grows the window")
    func autoTuneHoldsForSlowReader() throws {
        var window = ReceiveWindow(initial: 1 << 18, max: 1 << 24)
        var now = Timestamp(nanoseconds: 1)
        for _ in 0..<40 {
            try window.receive(Int(window.peerCredit))
            window.consume(Int(window.unconsumed))
            _ = window.takeUpdate(now: now, roundTrip: .milliseconds(50))
            now = now + .milliseconds(150) // slower than 2 × RTT: reader-limited
        }
        #expect(window.window == 1 << 18)
    }

    @Test("without a round-trip sample the window stays put")
    func autoTuneNeedsRoundTrip() throws {
        var window = ReceiveWindow(initial: 1 << 18, max: 1 << 24)
        for _ in 0..<10 {
            try window.receive(Int(window.peerCredit))
            window.consume(Int(window.unconsumed))
            _ = window.takeUpdate(now: .zero, roundTrip: nil)
        }
        #expect(window.window == 1 << 18)
    }
}
