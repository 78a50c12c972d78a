import Testing
import TunnelRuntime

@testable import TunnelGateway

/// The admission decisions for connections whose ClientHello was already waiting at their
/// accept (they queued in the kernel behind a reconnect storm), on a virtual clock.
@Suite("Admission at accept")
struct AdmissionStormTests {
    typealias Admission = ConnectionAdmission<Int>

    /// Small pools: 4 hello places, 8 handshakes of which 1 is kept for operators, 4 per source.
    static func limits() -> AdmissionLimits {
        var limits = AdmissionLimits()
        limits.helloWaits = 4
        limits.pendingHandshakes = 8
        limits.pendingHandshakesPerSource = 4
        return limits
    }

    @Test(
        "with the hello pool full, an operator whose hello came with its connect takes the operators' handshake place")
    func operatorPastAFullHelloPool() {
        var admission = Admission(limits: Self.limits(), now: 0)
        #expect(admission.limits.operatorReservedHandshakes == 1)
        // Slow connections fill the hello pool: a newcomer without its hello is refused.
        for id in 0..<4 {
            #expect(admission.mayConnect(from: "slow-\(id)", now: 0) == .admit(closing: nil))
            admission.awaitingHello(id, source: "slow-\(id)", now: 0)
        }
        #expect(admission.mayConnect(from: "admin", now: 1) == .refuse)
        // A storm of nodes whose hellos came with their connects takes every place but the operators'.
        for id in 10..<17 {
            #expect(admission.helloAtAccept(id, source: "node-\(id)", priority: .node, now: 2) == .admit(closing: nil))
        }
        // The next would wait in a hello place, but they are all held.
        #expect(admission.helloAtAccept(17, source: "node-17", priority: .node, now: 2) == .refuse)
        #expect(admission.greeting.count == 4, "no hello place was charged")
        #expect(admission.helloAtAccept(20, source: "admin", priority: .operator, now: 3) == .admit(closing: nil))
        #expect(admission.pending.count == 8)
        let counts = admission.takeRefusalSummaries(now: 60_000).reduce(into: [String: [String: Int]]()) {
            $0[$1.key] = $1.counts
        }
        #expect(counts["node-17"] == ["hello-cap": 1])
        #expect(counts["admin"] == ["hello-cap": 1])
    }

    @Test(
        "claims of the operator protocol hold no more than the operators' share, and an operator takes the oldest claim's place"
    )
    func floodClaimingOperator() {
        var limits = Self.limits()
        limits.pendingHandshakes = 16
        var admission = Admission(limits: limits, now: 0)
        #expect(admission.limits.operatorReservedHandshakes == 2)
        // A flood from as many addresses, each claiming to be an operator: it churns its own two places.
        for id in 0..<10 {
            let expected: Admission.Place = id < 2 ? .admit(closing: nil) : .admit(closing: id - 2)
            #expect(
                admission.helloAtAccept(id, source: "flood-\(id)", priority: .operator, now: UInt64(id)) == expected)
        }
        #expect(admission.operatorClaims == [8, 9])
        // The nodes keep the other fourteen places.
        for id in 10..<24 {
            #expect(admission.helloAtAccept(id, source: "node-\(id)", priority: .node, now: 10) == .admit(closing: nil))
        }
        #expect(admission.helloAtAccept(24, source: "node-24", priority: .node, now: 11) == .wait(closing: nil))
        // An operator's hello takes the oldest claim's place; its handshake keeps the mark.
        #expect(admission.helloAtAccept(30, source: "admin", priority: .operator, now: 12) == .admit(closing: 8))
        admission.handshakeStarted(300, after: 30)
        #expect(admission.operatorClaims == [9, 300] && admission.pending.count == 16)
        admission.authenticated(300, now: 13)
        #expect(admission.operatorClaims == [9])
    }

    @Test(
        "a connection whose hello came with its connect is charged to its source's rate, and refunded once it authenticates"
    )
    func chargedToTheRate() {
        var limits = Self.limits()
        limits.connectionsPerSourcePerMinute = 6
        limits.pendingHandshakesPerSource = 8
        var admission = Admission(limits: limits, now: 0)
        #expect(admission.helloAtAccept(0, source: "a", priority: .node, now: 0) == .admit(closing: nil))
        admission.handshakeStarted(100, after: 0)
        admission.authenticated(100, now: 0)
        #expect(admission.pending.count == 0)
        // The burst is ten seconds' worth (at 6 a minute: 1); the refund gave the first back.
        #expect(admission.helloAtAccept(1, source: "a", priority: .node, now: 1) == .admit(closing: nil))
        #expect(admission.helloAtAccept(2, source: "a", priority: .node, now: 2) == .refuse)
        #expect(admission.takeRefusalSummaries(now: 60_000).first?.counts == ["connection-rate": 1])
    }
}
