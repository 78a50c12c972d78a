import Testing
import TunnelState
import TunnelWire

@Suite("Token redemption")
struct RedemptionTests {
    let now = Sample.now

    /// Redeems `token` with its right secret for the key and node derived from `who`.
    func redeem(_ store: FleetStore, _ token: TokenEntry, as who: String, at time: Int64? = nil) throws
        -> TokenRedemption
    {
        try store.redeemToken(
            id: token.id, secretSHA256: token.secretSHA256, keySHA256: hexHash("key-\(who)"), nodeName: "node-\(who)",
            now: time ?? now)
    }

    @Test(arguments: StoreKind.tested) func unknownIdAndWrongSecretLookTheSame(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        let token = Sample.token()
        try store.insertToken(token)

        #expect(
            try store.redeemToken(
                id: "tok-nope", secretSHA256: token.secretSHA256, keySHA256: hexHash("k"), nodeName: "n", now: now)
                == .unknown)
        #expect(
            try store.redeemToken(
                id: token.id, secretSHA256: hexHash("guess"), keySHA256: hexHash("k"), nodeName: "n", now: now)
                == .unknown)
        // A prefix of the right hash is as wrong as any other guess.
        #expect(
            try store.redeemToken(
                id: token.id, secretSHA256: String(token.secretSHA256.dropLast()), keySHA256: hexHash("k"),
                nodeName: "n", now: now) == .unknown)
        #expect(try store.tokens() == [token])
    }

    @Test(arguments: StoreKind.tested) func expiredTokensAreRefusedFromTheirExpiryOn(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        let token = Sample.token(expiresAt: now)
        try store.insertToken(token)

        #expect(try redeem(store, token, as: "a") == .expired(at: now))
        #expect(try redeem(store, token, as: "a", at: now + 1) == .expired(at: now))
        var redeemed = token
        redeemed.usesCount = 1
        #expect(try redeem(store, token, as: "a", at: now - 1) == .redeemed(redeemed))
    }

    @Test(arguments: StoreKind.tested) func multiUseTokenCountsDownThenIsUsedUp(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        let token = Sample.token(uses: 3)
        try store.insertToken(token)

        for (used, who) in ["a", "b", "c"].enumerated() {
            var expected = token
            expected.usesCount = used + 1
            #expect(try redeem(store, token, as: who) == .redeemed(expected))
            #expect(try store.tokens().first?.usesCount == used + 1)
        }
        #expect(try redeem(store, token, as: "d") == .usedUp(uses: 3))
        #expect(try store.tokens().first?.usesCount == 3)
    }

    @Test(arguments: StoreKind.tested) func theSameKeyMayRetryEvenWhenUsedUpOrExpired(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        let token = Sample.token(uses: 1, expiresAt: now + 60)
        try store.insertToken(token)

        guard case .redeemed = try redeem(store, token, as: "a") else {
            Issue.record("the first redemption should succeed")
            return
        }
        #expect(try redeem(store, token, as: "b") == .usedUp(uses: 1))
        #expect(try redeem(store, token, as: "a") == .alreadyRedeemed(nodeName: "node-a"))
        #expect(try redeem(store, token, as: "a", at: now + 3_600) == .alreadyRedeemed(nodeName: "node-a"))
        // The retry reports the node name of the original redemption, whatever it asks for now.
        #expect(
            try store.redeemToken(
                id: token.id, secretSHA256: token.secretSHA256, keySHA256: hexHash("key-a"), nodeName: "other", now: now
            ) == .alreadyRedeemed(nodeName: "node-a"))
        // Knowing a redeemed key does not help without the secret.
        #expect(
            try store.redeemToken(
                id: token.id, secretSHA256: hexHash("guess"), keySHA256: hexHash("key-a"), nodeName: "node-a", now: now)
                == .unknown)
        #expect(try store.tokens().first?.usesCount == 1)
    }

    @Test(arguments: StoreKind.tested) func removingATokenForgetsItsRedemptions(kind: StoreKind) throws {
        let fresh = try FreshStore(kind)
        defer { fresh.remove() }
        let store = try fresh.open()
        let token = Sample.token()
        try store.insertToken(token)
        _ = try redeem(store, token, as: "a")

        #expect(try store.removeToken(id: token.id))
        #expect(try redeem(store, token, as: "a") == .unknown)
        try store.insertToken(token)
        var redeemed = token
        redeemed.usesCount = 1
        #expect(try redeem(store, token, as: "a") == .redeemed(redeemed))
    }
}
