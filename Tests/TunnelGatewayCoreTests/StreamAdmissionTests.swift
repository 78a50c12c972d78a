import Multiplex
import Testing
import TunnelAudit
import TunnelGatewayCore
import TunnelPolicy
import TunnelWire

/// Streams operators open, decided in the core: names, then the policy, the record budget, the
/// route, the node's share and its reset budget — each refusal with its code, its sentence and
/// its record, on a virtual clock.
@Suite("GatewayCore: stream admission")
struct StreamAdmissionTests {
    static let policy = try! Policy.parse(
        Array(
            """
            roles:
              admin:
                admin: true
                allow:
                  - services: ["*"]
                    nodes: ["*"]
              vendor:
                allow:
                  - services: [logs]
                    labels: {site: plant-a}
              viewer:
                allow:
                  - nodes: ["*"]
                    kubernetes: {groups: [edge-viewers]}
            """.utf8), source: "policy.yaml", version: "v1")

    /// A core with node `n1` live on connection 1 and operators on 10 (admin), 11 (vendor) and
    /// 12 (viewer); 13 and 14 are two more ordinary operators.
    static func fleet() -> Core {
        var core = makeCore()
        _ = core.connectNode(1, "n1")
        for (id, name) in [(10, "root"), (11, "vera"), (12, "val"), (13, "mallory"), (14, "eve")] {
            core.opened(id, sessionID: "s\(id)", remoteAddress: "o\(id)")
            _ = core.operatorAuthenticated(id, certificate: certificate(.operator, name), roles: [])
        }
        return core
    }

    static let roles = [10: ["admin"], 11: ["vendor"], 12: ["viewer"], 13: ["vendor"], 14: ["vendor"]]
    static let names = [10: "root", 11: "vera", 12: "val", 13: "mallory", 14: "eve"]

    /// Operator `id` asks for `service` on `node`, and the core decides with `carrier`.
    static func ask(
        _ core: inout Core, _ id: Int, _ service: String, node: String = "n1", stream: StreamID = 3,
        recorded: Bool = true, carrier: StreamCarrier<Int> = .local(1), hasRoom: Bool = true, now: Moment = at(0)
    ) -> [Intent] {
        let check = core.streamRequest(
            on: id, stream: stream, operatorName: names[id]!, roles: roles[id]!, node: node, service: service,
            parameters: nil, interactive: true, policyVersion: "v1", recordedOneByOne: recorded)
        switch check {
        case .refused(let intents): return intents
        case .checked(let request):
            return core.admitStream(
                request, policy: policy, labels: ["site": "plant-a"], carrier: carrier, carrierHasRoom: hasRoom,
                now: now)
        }
    }

    @Test("an allowed stream opens over the node's session with the rule that allowed it; kubernetes gets its identity")
    func allowed() {
        var core = Self.fleet()
        let intents = Self.ask(&core, 11, "logs")
        guard case .openRelay(let request, let link)? = intents.last, intents.count == 1 else {
            Issue.record("not opened: \(intents)")
            return
        }
        #expect(link == 1)
        #expect(request.grant.rule == "vendor.allow[0]")
        #expect(
            request.target
                == StreamTarget(stream: "s11/3", node: "n1", service: "logs", parameters: nil, policyVersion: "v1"))
        #expect(request.actor.name == "vera" && request.actor.roles == ["vendor"])
        guard case .openRelay(let kube, _)? = Self.ask(&core, 12, TunnelProtocol.kubernetesService).last else {
            Issue.record("kubernetes not opened")
            return
        }
        #expect(kube.grant.kubeUser == "val" && kube.grant.kubeGroups == ["edge-viewers"])
        guard
            case .openRelay(let viaPeer, let peerLink)? = Self.ask(
                &core, 10, "ssh", carrier: .peer(replica: "r2", link: 99)
            ).last
        else {
            Issue.record("not opened through the peer link")
            return
        }
        #expect(peerLink == 99 && viaPeer.grant.viaReplica == "r2")
    }

    @Test("a denied stream is refused with the policy's sentence and a stream_deny record")
    func denied() {
        var core = Self.fleet()
        let intents = Self.ask(&core, 11, "ssh")
        guard case .refuseStream(11, 3, let code, let sentence)? = intents.last else {
            Issue.record("not refused: \(intents)")
            return
        }
        #expect(code == TunnelErrorCode.denied)
        #expect(sentence.contains("vendor"))
        guard case .streamDeny(let parties, _, let denial)? = intents.records.first else {
            Issue.record("no stream_deny record")
            return
        }
        #expect(parties.actor.name == "vera" && parties.target?.service == "ssh")
        #expect(denial == StreamDenial(outcome: "denied", reason: sentence))
        #expect(intents.logged(.notice) == ["stream refused"])
    }

    @Test("names that break the rules are refused before anything is looked up; past the record budget only counted")
    func badNames() {
        var core = Self.fleet()
        let intents = Self.ask(&core, 11, "logs", node: "N1\u{1b}[2J")
        #expect(intents.records.count == 1)
        guard case .streamDeny(let parties, _, let denial)? = intents.records.first, parties.target == nil else {
            Issue.record("no stream_deny record without a target")
            return
        }
        #expect(denial.outcome == "bad_request")
        guard case .refuseStream(11, 3, TunnelErrorCode.badRequest, _)? = intents.last else {
            Issue.record("not refused as a bad request")
            return
        }
        let counted = Self.ask(&core, 11, "lo gs", recorded: false)
        #expect(counted.records.isEmpty && counted.logged(.notice).isEmpty)
        #expect(counted.first == .countUnrecordedStream("vera", outcome: "bad_request"))
    }

    @Test("past the record budget an allowed stream is not opened (none opens unrecorded), and only counted")
    func rateLimited() {
        var core = Self.fleet()
        let intents = Self.ask(&core, 11, "logs", recorded: false)
        #expect(intents.first == .countUnrecordedStream("vera", outcome: "rate_limited"))
        guard case .refuseStream(_, _, let code, let sentence)? = intents.last else {
            Issue.record("opened past the record budget")
            return
        }
        #expect(code == .enhanceYourCalm)
        #expect(sentence.hasPrefix("you opened more than 600 streams in a minute (or 60 at once)"))
        #expect(intents.records.isEmpty)
    }

    @Test("a node nothing carries is refused as offline, saying why when more is known")
    func offline() {
        var core = Self.fleet()
        func sentence(_ carrier: StreamCarrier<Int>) -> String? {
            guard
                case .refuseStream(_, _, TunnelErrorCode.unknownNode, let sentence)? = Self.ask(
                    &core, 10, "ssh", carrier: carrier
                ).last
            else { return nil }
            return sentence
        }
        let offline = TunnelErrorCode.explain(Failure(TunnelErrorCode.unknownNode, ""), node: "n1", service: "ssh")
        #expect(sentence(.none(nil)) == offline)
        #expect(
            sentence(.none("its session on replica r2 has ended")) == "\(offline) (its session on replica r2 has ended)"
        )
        #expect(sentence(.dialing(replica: "r2")) == "\(offline) (the link to replica r2 is not up yet; retry)")
    }

    @Test("an operator's share of a node, the admins' reserve and a full session refuse as busy")
    func busy() {
        var core = Self.fleet()
        for _ in 0..<3 { core.streamOpened(node: "n1", operatorName: "vera") }
        func code(_ id: Int, hasRoom: Bool = true) -> (ErrorCode, String)? {
            guard case .refuseStream(_, _, let code, let sentence)? = Self.ask(&core, id, "logs", hasRoom: hasRoom).last
            else {
                return nil
            }
            return (code, sentence)
        }
        #expect(
            code(11)?.1 == "you have 3 streams open to n1, the most one operator may have on a node; close one first")
        #expect(code(13) == nil)
        core.streamOpened(node: "n1", operatorName: "mallory")
        #expect(code(14)?.0 == TunnelErrorCode.nodeBusy, "the last two streams are the admins'")
        #expect(code(10) == nil)
        #expect(code(13, hasRoom: false)?.0 == TunnelErrorCode.nodeBusy)
        core.streamEnded(node: "n1", operatorName: "vera", resetByOperator: false, now: at(1))
        #expect(core.openStreams(on: "n1") == 3)
        #expect(code(11) == nil)
    }

    @Test("operators who reset a node's allowance away are held off for the window; the worst is disconnected")
    func resetBudget() {
        var core = Self.fleet()
        // The node tolerates 40 resets a window; a quarter of that, 10, is the operators' together.
        for _ in 0..<4 { core.streamEnded(node: "n1", operatorName: "mallory", resetByOperator: true, now: at(1)) }
        for _ in 0..<6 { core.streamEnded(node: "n1", operatorName: "eve", resetByOperator: true, now: at(1)) }
        let mallory = Self.ask(&core, 13, "logs", now: at(2))
        guard case .refuseStream(13, _, .enhanceYourCalm, let sentence)? = mallory.last else {
            Issue.record("mallory was not held off: \(mallory)")
            return
        }
        #expect(sentence.contains("refused for 9 s"))
        #expect(mallory.aborts.isEmpty)
        let eve = Self.ask(&core, 14, "logs", now: at(2))
        #expect(eve.aborts.map(\.0) == [14], "eve reset more than half of them")
        #expect(eve.logged(.warning) == ["operator disconnected for rapid resets through the gateway"])
        guard case .openRelay? = Self.ask(&core, 11, "logs", now: at(2)).last else {
            Issue.record("vera reset nothing and was refused")
            return
        }
        guard case .openRelay? = Self.ask(&core, 13, "logs", now: at(11)).last else {
            Issue.record("mallory is still held off after the window")
            return
        }
    }

    @Test("a refusal after admission (recording or audit failing) is recorded like any other")
    func laterRefusal() {
        var core = Self.fleet()
        guard case .openRelay(let request, _)? = Self.ask(&core, 11, "logs").last else {
            Issue.record("not opened")
            return
        }
        let intents = core.refuse(request, TunnelErrorCode.auditUnavailable, "no audit", outcome: "audit_unavailable")
        #expect(intents.last == .refuseStream(11, 3, code: TunnelErrorCode.auditUnavailable, sentence: "no audit"))
        guard case .streamDeny(_, let grant, let denial)? = intents.records.first else {
            Issue.record("no record")
            return
        }
        #expect(grant.rule == "vendor.allow[0]" && denial.outcome == "audit_unavailable")
    }
}
