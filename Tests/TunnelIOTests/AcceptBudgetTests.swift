import Testing
import TunnelIO

@Suite struct AcceptBudgetTests {
    /// What `count` accepts in a row at `now` are told.
    private func ask(_ budget: inout AcceptBudget, _ count: Int = 1, now: UInt64) -> [Bool] {
        (0..<count).map { _ in budget.mayAccept(now: now) }
    }

    @Test func takesAtMostItsCountInATurnThenAFullBudgetNextTurn() {
        var budget = AcceptBudget(perTurn: 3, turnNanoseconds: 1_000_000)
        #expect(ask(&budget, 5, now: 0) == [true, true, true, false, false])
        budget.newTurn()
        #expect(ask(&budget, 4, now: 10) == [true, true, true, false])
    }

    @Test func aTurnTakesNoMoreOnceItsTimeSinceTheFirstAcceptIsUp() {
        var budget = AcceptBudget(perTurn: 100, turnNanoseconds: 5_000)
        #expect(ask(&budget, now: 1_000) == [true])
        #expect(ask(&budget, now: 5_999) == [true])
        #expect(ask(&budget, now: 6_000) == [false])
        budget.newTurn()
        // The clock starts again at the new turn's first accept, however late that is.
        #expect(ask(&budget, now: 50_000) == [true])
        #expect(ask(&budget, now: 54_999) == [true])
    }

    @Test func theFirstOfATurnIsAlwaysTakenSoTheQueueNeverStalls() {
        var budget = AcceptBudget(perTurn: 0, turnNanoseconds: 0)
        #expect(budget.perTurn == 1)
        #expect(ask(&budget, 2, now: 7) == [true, false])
        budget.newTurn()
        #expect(ask(&budget, now: 8) == [true])
    }

    /// Five connections queued at once, a budget of two: no loop turn accepts more than two,
    /// and every one is accepted, the ones left over taken in the turns that follow.
    @Test func aListenerSpreadsAQueueOverTurnsAndLosesNone() throws {
        let loop = try EventLoop()
        var accepted: [StreamConnection] = []
        let listener = try TCPListener(
            loop: loop, address: SocketAddress(ip: "127.0.0.1", port: 0),
            acceptBudget: AcceptBudget(perTurn: 2, turnNanoseconds: .max)
        ) { result in
            guard case .success(let socket) = result else {
                Issue.record("accept failed: \(result)")
                return
            }
            accepted.append(socket)
        }
        var connected = 0
        let clients = try (0..<5).map { _ in
            try StreamConnection.connect(loop: loop, to: listener.localAddress) { result in
                if case .failure(let error) = result { Issue.record("connect failed: \(error)") }
                connected += 1
            }
        }
        var perTurn: [Int] = []
        for _ in 0..<1_000 where accepted.count < 5 || connected < 5 {
            let before = accepted.count
            loop.runNoWait()
            perTurn.append(accepted.count - before)
        }
        #expect(accepted.count == 5)
        #expect(perTurn.allSatisfy { $0 <= 2 }, "accepted per turn: \(perTurn)")
        #expect(perTurn.filter { $0 > 0 }.count >= 3, "accepted per turn: \(perTurn)")
        for connection in accepted + clients { connection.close() }
        listener.close()
        loop.run()
        #expect(loop.openHandles() == [])
        #expect(loop.close())
    }
}
