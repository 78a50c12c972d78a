import Multiplex
import Testing
import TunnelEdgeCore

private let refused = Failure(.internalError, "refused")

@Suite("EdgeCore: renewal, re-enrollment and the clock")
struct EdgeCoreIdentityTests {
    @Test("a session schedules renewal at two thirds of the certificate's life, counted from its issue")
    func renewalAtTwoThirds() {
        var node = EdgeNode(age: 600, lifetime: 3_600)
        _ = node.handle(.start)
        // Issued 600 s ago for an hour: two thirds is at 2,400 s, 1,800 s from now.
        #expect(node.handle(.sessionReady) == [.renew(afterMilliseconds: 1_800_000, failedBecause: nil)])
        node.advance(milliseconds: 1_800_000)
        #expect(node.handle(.renewalTimerFired) == [.requestRenewal])
        #expect(node.handle(.renewalTimerFired) == [], "one renewal at a time")
        let renewed = CertificateDates(notBefore: node.now.unixSeconds, notAfter: node.now.unixSeconds + 3_600)
        #expect(node.handle(.renewed(renewed)) == [.renew(afterMilliseconds: 2_400_000, failedBecause: nil)])
        #expect(node.core.certificate == renewed)
    }

    @Test("a certificate already past two thirds renews at once")
    func overdueRenewsAtOnce() {
        var node = EdgeNode(age: 3_000, lifetime: 3_600)
        _ = node.handle(.start)
        #expect(node.handle(.sessionReady) == [.renew(afterMilliseconds: 0, failedBecause: nil)])
    }

    @Test("a failed renewal is retried within a minute, sooner as expiry nears")
    func failedRenewalRetries() {
        var node = EdgeNode(age: 2_400, lifetime: 3_600)
        node.connect()
        #expect(node.handle(.renewalTimerFired) == [.requestRenewal])
        // 1,200 s left: a minute.
        #expect(
            node.handle(.renewalFailed(reason: "busy")) == [.renew(afterMilliseconds: 60_000, failedBecause: "busy")])
        node.advance(milliseconds: 1_170_000)
        #expect(node.handle(.renewalTimerFired) == [.requestRenewal])
        // 30 s left: a tenth of it.
        #expect(
            node.handle(.renewalFailed(reason: "busy")) == [.renew(afterMilliseconds: 3_000, failedBecause: "busy")])
        node.advance(milliseconds: 29_000)
        _ = node.handle(.renewalTimerFired)
        #expect(
            node.handle(.renewalFailed(reason: "busy")) == [.renew(afterMilliseconds: 1_000, failedBecause: "busy")])
    }

    @Test("no renewal without a session: the timer and a late failure are dropped, a late certificate is kept")
    func renewalNeedsSession() {
        var node = EdgeNode(age: 2_400)
        node.connect()
        #expect(node.handle(.renewalTimerFired) == [.requestRenewal])
        _ = node.handle(.sessionClosed(EdgeLoss(refused)))
        #expect(node.handle(.renewalFailed(reason: "session closed")) == [])
        #expect(node.handle(.renewalTimerFired) == [])
        let renewed = CertificateDates(notBefore: node.now.unixSeconds, notAfter: node.now.unixSeconds + 3_600)
        #expect(node.handle(.renewed(renewed)) == [])
        #expect(node.core.certificate == renewed)
    }

    @Test("a node whose certificate expired while it was off re-enrolls before dialing, then dials")
    func expiredReenrolls() {
        var node = EdgeNode(age: 7_200, lifetime: 3_600)
        let expiredAt = node.now.unixSeconds - 3_600
        #expect(node.handle(.start) == [.reenroll(replica: 0, certificatesAt: nil, expiredAt: expiredAt)])
        let fresh = CertificateDates(notBefore: node.now.unixSeconds, notAfter: node.now.unixSeconds + 3_600)
        #expect(node.handle(.reenrolled(fresh)) == [.dial(replica: 0, certificatesAt: nil)])
    }

    @Test("a certificate that expires during an outage is re-enrolled when the retry timer fires")
    func expiresWhileWaiting() {
        var node = EdgeNode(age: 3_590, lifetime: 3_600)
        node.connect()
        _ = node.handle(.sessionClosed(EdgeLoss(refused)))
        node.advance(milliseconds: 20_000)
        #expect(
            node.handle(.retryTimerFired) == [
                .reenroll(replica: 0, certificatesAt: nil, expiredAt: node.now.unixSeconds - 10)
            ])
    }

    @Test("a revoked node's refused re-enrollment is retried as revoked, and re-enrolls again after the wait")
    func revokedKeepsTrying() {
        var node = EdgeNode(age: 7_200, lifetime: 3_600)
        _ = node.handle(.start)
        let revoked = EdgeLoss(.revoked, Failure(.internalError, "re-enrollment failed: node was revoked"))
        let intents = node.handle(.reenrollmentFailed(revoked))
        #expect(intents == [.retry(afterMilliseconds: 500, revoked)])
        guard case .reenroll = node.handle(.retryTimerFired).first else {
            Issue.record("the node did not re-enroll again after the wait")
            return
        }
    }

    @Test("a re-enrollment that yields an expired certificate waits instead of looping")
    func expiredReplyWaits() {
        var node = EdgeNode(age: 7_200, lifetime: 3_600)
        _ = node.handle(.start)
        let stale = CertificateDates(notBefore: node.now.unixSeconds - 100, notAfter: node.now.unixSeconds - 1)
        #expect(EdgeNode.wait(node.handle(.reenrolled(stale))) != nil)
    }
}

@Suite("EdgeCore: a wrong clock")
struct EdgeCoreClockTests {
    /// The local clock three days behind the gateway's: the gateway's certificate looks not yet valid.
    private let skew: Int64 = 3 * 86_400
    private let notYetValid = EdgeLoss(
        .unreachable, Failure(.protocolError, "TLS error"), certificateTimeError: "certificate is not yet valid")

    /// A node after a cold boot: its certificate was issued by the gateway's clock, so it looks
    /// valid only from three days on.
    private func coldBooted() -> EdgeNode { EdgeNode(age: -skew, lifetime: 30 * 86_400) }

    @Test("a handshake refused by certificate dates asks the gateway's time once, then checks at its time")
    func correctsTheClock() {
        var node = coldBooted()
        _ = node.handle(.start)
        #expect(node.handle(.sessionClosed(notYetValid)) == [.cancelRenewal, .askGatewayTime(replica: 0)])
        let gateway = node.now.unixSeconds + skew
        #expect(
            node.handle(.gatewayTime(gateway)) == [
                .clockCorrected(offset: skew, local: node.now.unixSeconds, gateway: gateway),
                .dial(replica: 0, certificatesAt: gateway),
            ])
        #expect(node.core.clockOffset == skew)
        // Certificates are checked at the gateway's time from then on, after any wait too.
        node.advance(milliseconds: 5_000)
        _ = node.handle(.dialFailed(refused))
        #expect(node.handle(.retryTimerFired) == [.dial(replica: 0, certificatesAt: gateway + 5)])
    }

    @Test("a second date refusal before any session is not blamed on the clock again")
    func checksOnce() {
        var node = coldBooted()
        _ = node.handle(.start)
        _ = node.handle(.sessionClosed(notYetValid))
        _ = node.handle(.gatewayTime(node.now.unixSeconds + skew))
        let intents = node.handle(.sessionClosed(notYetValid))
        #expect(EdgeNode.wait(intents) != nil && !intents.contains(EdgeCore.Intent.askGatewayTime(replica: 0)))
        // A session that comes up re-arms the check.
        _ = node.handle(.retryTimerFired)
        _ = node.handle(.sessionReady)
        #expect(node.handle(.sessionClosed(notYetValid)).contains(EdgeCore.Intent.askGatewayTime(replica: 0)))
    }

    @Test("a clock within a minute of the gateway's is right: the refusal is retried with that said")
    func clockRight() {
        var node = EdgeNode()
        _ = node.handle(.start)
        _ = node.handle(.sessionClosed(notYetValid))
        let intents = node.handle(.gatewayTime(node.now.unixSeconds + 30))
        guard case .retry(_, let loss)? = intents.first else {
            Issue.record("no retry: \(intents)")
            return
        }
        #expect(loss.failure.reason.contains("the clock is right"))
        #expect(node.core.clockOffset == 0)
    }

    @Test(
        "a clock far ahead makes a valid certificate look expired: the re-enrollment's refusal corrects it and the node dials"
    )
    func clockAheadLooksExpired() {
        var node = EdgeNode()
        node.now.unixSeconds += 400 * 86_400
        guard case .reenroll = node.handle(.start).first else {
            Issue.record("the node did not re-enroll with a certificate expired by its own clock")
            return
        }
        let expiredLooking = EdgeLoss(
            .unreachable, Failure(.internalError, "re-enrollment failed"), certificateTimeError: "expired")
        #expect(node.handle(.reenrollmentFailed(expiredLooking)) == [.askGatewayTime(replica: 0)])
        let gateway = node.now.unixSeconds - 400 * 86_400
        let intents = node.handle(.gatewayTime(gateway))
        #expect(intents.last == .dial(replica: 0, certificatesAt: gateway))
    }

    @Test("an unreachable time service is retried as a failure; a late answer is dropped")
    func timeUnavailable() {
        var node = EdgeNode()
        _ = node.handle(.start)
        _ = node.handle(.sessionClosed(notYetValid))
        let intents = node.handle(.gatewayTimeFailed(reason: "timed out"))
        guard case .retry(_, let loss)? = intents.first else {
            Issue.record("no retry: \(intents)")
            return
        }
        #expect(loss.failure.reason == "cannot learn the gateway's time: timed out")
        #expect(node.handle(.gatewayTime(node.now.unixSeconds + skew)) == [])
        #expect(node.core.clockOffset == 0)
    }
}

@Suite("Enrollment with a token: when to try again")
struct EnrollmentAttemptsTests {
    @Test("a refusal is final; other failures wait on the reconnect schedule, longer each time")
    func attempts() {
        var attempts = EnrollmentAttempts(
            schedule: ReconnectSchedule(backoff: Backoff(base: .milliseconds(500), cap: .seconds(30))),
            random: LongestWait())
        let waits = (0..<4).map { attempts.failed(isFinal: false, now: UInt64($0) * 10_000) }
        #expect(waits == [500, 1_000, 2_000, 4_000].map { .retry(afterMilliseconds: $0) })
        #expect(attempts.failed(isFinal: true, now: 50_000) == .giveUp)
    }
}
