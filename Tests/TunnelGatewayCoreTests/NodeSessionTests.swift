import Multiplex
import Testing
import TunnelAudit
import TunnelGatewayCore
import TunnelWire

/// Node sessions in the core: one live session per node, the newest wins with a new epoch, the
/// replaced one is told and recorded once, and two machines with one key are noticed — all on a
/// virtual clock, where the loopback tests waited for real takeovers.
@Suite("GatewayCore: node sessions")
struct NodeSessionTests {
    @Test("a node's first session is recorded with epoch 1, written to the store, and is its live one")
    func firstSession() {
        var core = makeCore()
        let intents = core.connectNode(1, "n1", from: "10.0.0.1:1", now: at(3))
        #expect(core.liveSession(of: "n1") == 1)
        #expect(core.nodes["n1"]?.epoch == 1)
        #expect(core.nodes["n1"]?.connectedSince == start + 3)
        #expect(
            intents.records == [
                .nodeConnect(
                    AuditPeer(session: "s1", source: "10.0.0.1:1"),
                    NodeConnect(node: "n1", nodeSerial: "serial-n1", epoch: 1))
            ])
        #expect(intents.contains(.nodeSeen("n1", NodeSighting(at: Int64(start) + 3, address: "10.0.0.1:1"))))
        #expect(intents.aborts.isEmpty)
        #expect(core.connectionKinds == ["node": 1])
    }

    @Test(
        "a newer session takes over: the old one is recorded as replaced, told why and closed; its close records nothing more"
    )
    func takeover() {
        var core = makeCore()
        _ = core.connectNode(1, "n1", from: "10.0.0.1:1")
        let intents = core.connectNode(2, "n1", from: "10.0.0.2:2", now: at(5))
        #expect(core.liveSession(of: "n1") == 2)
        #expect(core.nodes["n1"]?.epoch == 2)
        #expect(core.connections[1]?.role == .replaced("n1"))
        #expect(
            intents.aborts.map(\.0) == [1]
                && intents.aborts[0].1
                    == Failure(TunnelErrorCode.replaced, "replaced by a newer session of n1 from 10.0.0.2:2")
        )
        #expect(
            intents.records.first
                == .nodeDisconnect(
                    AuditPeer(session: "s1", source: "10.0.0.1:1"),
                    NodeDisconnect(node: "n1", reason: "replaced by a newer session", replacedBy: "10.0.0.2:2")))
        #expect(intents.logged(.notice) == ["node reconnected; replacing its older session"])
        #expect(
            core.nodes["n1"]?.previousSessionEnded
                == "replaced by a newer session from 10.0.0.2:2 (the replaced one was from 10.0.0.1:1)")
        // The replaced session closing does not take the node offline or record a second disconnect.
        #expect(core.closed(1, failure: Failure(TunnelErrorCode.replaced, "replaced"), now: at(6)).isEmpty)
        #expect(core.liveSession(of: "n1") == 2)
        #expect(core.connectionKinds == ["node": 1])
    }

    @Test("the live session's end takes the node offline, releases its presence and says why")
    func liveSessionEnds() {
        var core = makeCore()
        _ = core.connectNode(1, "n1", from: "a")
        let intents = core.closed(1, failure: Failure(.keepaliveTimeout, "no pong"), now: at(9))
        let reason = "network lost (no keepalive answer)"
        #expect(core.liveSession(of: "n1") == nil)
        #expect(core.nodes["n1"]?.lastDisconnectReason == reason)
        #expect(intents.contains(.presenceEnded(node: "n1")))
        #expect(intents.contains(.nodeSeen("n1", NodeSighting(at: Int64(start) + 9, disconnectReason: reason))))
        #expect(
            intents.records == [
                .nodeDisconnect(AuditPeer(session: "s1", source: "a"), NodeDisconnect(node: "n1", reason: reason))
            ])
        // The next session tells how the previous one ended, with the next epoch.
        _ = core.connectNode(2, "n1", now: at(20))
        #expect(core.nodes["n1"]?.previousSessionEnded == reason)
        #expect(core.nodes["n1"]?.epoch == 2)
        let other = core.closed(2, failure: Failure(.noError, "bye"), now: at(21))
        #expect(core.nodes["n1"]?.lastDisconnectReason == "disconnected: bye")
        #expect(other.records.count == 1)
    }

    @Test("in a cluster the store's epoch is the session's; without an answer the local count goes on")
    func clusterEpochs() {
        var core = makeCore()
        _ = core.connectNode(1, "n1", clusterEpoch: 41)
        #expect(core.nodes["n1"]?.epoch == 41)
        _ = core.connectNode(2, "n1", clusterEpoch: nil)
        #expect(core.nodes["n1"]?.epoch == 42)
    }

    @Test("three takeovers within a minute warn once per minute, and the node list says two machines may share a key")
    func flapping() {
        var core = makeCore()
        _ = core.connectNode(0, "n5", from: "m0")
        var warnings = 0
        for round in 1...6 {
            let intents = core.connectNode(round, "n5", from: "m\(round % 2)", now: at(Double(round) * 5))
            warnings += intents.logged(.warning).count
            _ = core.closed(round - 1, failure: Failure(TunnelErrorCode.replaced, ""), now: at(Double(round) * 5))
        }
        #expect(warnings == 1)
        #expect(core.nodes["n5"]?.previousSessionEnded?.contains("two machines may share this node's key") == true)
        // Takeovers more than a minute apart are reconnects, not flapping.
        var calm = makeCore()
        _ = calm.connectNode(0, "n6")
        for round in 1...4 {
            let intents = calm.connectNode(round, "n6", now: at(Double(round) * 61))
            #expect(intents.logged(.warning).isEmpty)
        }
        #expect(calm.nodes["n6"]?.previousSessionEnded?.contains("two machines") == false)
    }

    @Test("only the live session may announce, with names that follow the rules; a new boot id is a reboot")
    func announcements() {
        var core = makeCore()
        _ = core.connectNode(1, "n1")
        func announcement(boot: String, services: [String] = ["ssh"], labels: [String: String] = [:])
            -> NodeAnnouncement
        {
            NodeAnnouncement(labels: labels, services: services, version: "1", bootID: boot, uptimeSeconds: 42)
        }
        #expect(core.announced(1, announcement(boot: "b1")) == nil)
        #expect(core.nodes["n1"]?.announcement?.services == ["ssh"])
        guard case .badName(let sentence)? = core.announced(1, announcement(boot: "b1", services: ["SSH\u{1b}"])) else {
            Issue.record("a service name with an escape was announced")
            return
        }
        #expect(!sentence.isEmpty)
        #expect(core.announced(1, announcement(boot: "b1", labels: ["bad key": "x"])) != nil)
        _ = core.connectNode(2, "n1")
        #expect(core.announced(1, announcement(boot: "b1")) == .notLive)
        #expect(core.announced(2, announcement(boot: "b2")) == nil)
        #expect(
            core.nodes["n1"]?.previousSessionEnded?.hasPrefix("node rebooted (up 42 s); before that: replaced") == true)
        core.opened(3, sessionID: "s3", remoteAddress: "x")
        #expect(core.announced(3, announcement(boot: "b3")) == .notLive)
    }

    @Test("a removed node is forgotten; its closing session then records its disconnect but releases nothing")
    func forgetting() {
        var core = makeCore()
        _ = core.connectNode(1, "n1")
        core.forgetNode("n1")
        #expect(core.nodes["n1"] == nil)
        let intents = core.closed(1, failure: Failure(TunnelErrorCode.revoked, "removed"), now: at(1))
        #expect(intents.records.count == 1)
        #expect(!intents.contains(.presenceEnded(node: "n1")))
    }
}
