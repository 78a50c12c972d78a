import Foundation
import Testing
import TunnelState
import TunnelWire

/// Outcomes collected from several threads.
private final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var redemptions: [(key: String, outcome: TokenRedemption)] = []
    private var failures: [String] = []

    func record(key: String, _ outcome: TokenRedemption) {
        lock.withLock { redemptions.append((key, outcome)) }
    }

    func record(failure: String) {
        lock.withLock { failures.append(failure) }
    }

    var snapshot: (redemptions: [(key: String, outcome: TokenRedemption)], failures: [String]) {
        lock.withLock { (redemptions, failures) }
    }
}

@Suite("Concurrent redemption")
struct ConcurrentRedemptionTests {
    /// Eight connections (one per thread, as eight gateways on one file or eight replicas on one
    /// PostgreSQL database would have) race
    /// 50 redemptions of one single-use token with 50 different keys: the database alone
    /// must let exactly one through.
    @Test(.timeLimit(.minutes(1)), arguments: StoreKind.tested) func aSingleUseTokenIsRedeemedExactlyOnce(
        kind: StoreKind
    ) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let token = Sample.token(uses: 1)
        try fresh.open().insertToken(token)

        let threadCount = 8, attempts = 50
        let outcomes = Outcomes()
        let opened = DispatchSemaphore(value: 0), start = DispatchSemaphore(value: 0)
        let finished = DispatchGroup()
        for thread in 0..<threadCount {
            finished.enter()
            Thread {
                defer { finished.leave() }
                let store: FleetStore
                do {
                    store = try fresh.open()
                } catch {
                    outcomes.record(failure: "\(error)")
                    opened.signal()
                    return
                }
                opened.signal()
                start.wait()
                for attempt in stride(from: thread, to: attempts, by: threadCount) {
                    let key = hexHash("key-\(attempt)")
                    do {
                        outcomes.record(
                            key: key,
                            try store.redeemToken(
                                id: token.id, secretSHA256: token.secretSHA256, keySHA256: key,
                                nodeName: "node-\(attempt)", now: Sample.now))
                    } catch {
                        outcomes.record(failure: "\(error)")
                    }
                }
            }.start()
        }
        // Release all threads at once, after every connection is open, so the attempts overlap.
        for _ in 0..<threadCount {
            try #require(opened.wait(timeout: .now() + 20) == .success, "a thread did not open its store in time")
        }
        for _ in 0..<threadCount { start.signal() }
        try #require(finished.wait(timeout: .now() + 40) == .success, "the redemptions did not finish in time")

        let (redemptions, failures) = outcomes.snapshot
        #expect(failures.isEmpty)
        #expect(redemptions.count == attempts)
        var redeemedToken = token
        redeemedToken.usesCount = 1
        let winners = redemptions.filter { $0.outcome == .redeemed(redeemedToken) }
        #expect(winners.count == 1)
        #expect(redemptions.filter { $0.outcome == .usedUp(uses: 1) }.count == attempts - 1)

        let store = try fresh.open()
        #expect(try store.tokens().map(\.usesCount) == [1])
        if let winner = winners.first, let attempt = (0..<attempts).first(where: { hexHash("key-\($0)") == winner.key })
        {
            #expect(
                try store.redeemToken(
                    id: token.id, secretSHA256: token.secretSHA256, keySHA256: winner.key, nodeName: "x",
                    now: Sample.now) == .alreadyRedeemed(nodeName: "node-\(attempt)"))
        }
    }
}
