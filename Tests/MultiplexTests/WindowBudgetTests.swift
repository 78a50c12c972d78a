import Testing

@testable import Multiplex

@Suite("Window budget")
struct WindowBudgetTests {
    /// Drives one window-limited round: the peer fills its credit, the reader takes it all, and
    /// the update goes out `interval` after the previous one.
    private static func round(_ window: inout ReceiveWindow, at now: Timestamp) throws {
        try window.receive(Int(window.peerCredit))
        window.consume(Int(window.unconsumed))
        _ = window.takeUpdate(now: now, roundTrip: .milliseconds(50))
    }

    @Test("streams sharing a budget grow only as far as it lends, and a closed one's loan goes to the next")
    func sharedGrowth() throws {
        let budget = WindowBudget(capacity: 3 << 20)
        var first = ReceiveWindow(initial: 1 << 18, max: 1 << 24, budget: budget)
        var second = ReceiveWindow(initial: 1 << 18, max: 1 << 24, budget: budget)
        var now = Timestamp(nanoseconds: 1)
        for _ in 0..<12 {
            try Self.round(&first, at: now)
            now = now + .milliseconds(20)
        }
        // 256 KiB + 3 MiB: the doublings stop where the budget runs out.
        #expect(first.window == (1 << 18) + (3 << 20))
        #expect(budget.borrowed == 3 << 20)
        for _ in 0..<12 {
            try Self.round(&second, at: now)
            now = now + .milliseconds(20)
        }
        #expect(second.window == 1 << 18, "nothing left to lend")
        first.release()
        for _ in 0..<12 {
            try Self.round(&second, at: now)
            now = now + .milliseconds(20)
        }
        #expect(second.window == (1 << 18) + (3 << 20))
        #expect(budget.borrowed == 3 << 20)
    }

    @Test("a grown window whose reader slows to one update a second halves back to its initial size")
    func slowReaderShrinks() throws {
        let budget = WindowBudget(capacity: 64 << 20)
        var window = ReceiveWindow(initial: 1 << 18, max: 1 << 24, budget: budget)
        var now = Timestamp(nanoseconds: 1)
        for _ in 0..<10 {
            try Self.round(&window, at: now)
            now = now + .milliseconds(20)
        }
        #expect(window.window == 1 << 24)
        #expect(budget.borrowed == (1 << 24) - (1 << 18))
        var sizes: [Int64] = []
        for _ in 0..<8 {
            now = now + .seconds(2)
            try Self.round(&window, at: now)
            sizes.append(window.window)
            // Credit is never taken back: what the peer may send plus what is held is the window.
            #expect(window.peerCredit + window.unconsumed + window.pendingIncrement == window.window)
        }
        let halvings: [Int64] = (18...23).reversed().map { 1 << $0 }
        #expect(Array(sizes.prefix(6)) == halvings)
        #expect(window.window == 1 << 18)
        #expect(budget.borrowed == 0)
    }

    @Test("a stream's loan goes back to the budget when the stream ends, finished or reset")
    func sessionReturnsLoans() throws {
        let budget = WindowBudget(capacity: 8 << 20)
        var configuration = SessionConfiguration()
        configuration.windowBudget = budget
        for endsByReset in [false, true] {
            let pair = SessionPair(configuration: configuration)
            pair.pump()
            pair.acceptor.session.roundTrip = .milliseconds(50)
            let id = try pair.dialer.session.openStream(metadata: [])
            var sent = 0
            for _ in 0..<200 where sent < 6 << 20 {
                let chunk = pattern(stream: id, from: sent, count: 256 * 1024)
                try pair.dialer.session.write(chunk, on: id)
                sent += chunk.count
                pair.pump()
                pair.now = pair.now + .milliseconds(1)
            }
            #expect(pair.acceptor.session.receiveWindow(of: id)! > Int64(configuration.initialStreamWindow))
            #expect(budget.borrowed > 0)
            if endsByReset {
                pair.dialer.session.reset(id)
            } else {
                try pair.dialer.session.finish(id)
                try pair.acceptor.session.finish(id)
            }
            pair.pump()
            #expect(pair.acceptor.session.state(of: id) == .closed)
            #expect(pair.acceptor.patternErrors.isEmpty)
            #expect(budget.borrowed == 0, "ended by \(endsByReset ? "reset" : "finish")")
        }
    }
}
