import Logging
import Multiplex
import TunnelAudit
import TunnelPolicy
import TunnelText
import TunnelWire

// Streams operators open to nodes, decided in the core: names at the door, then the policy,
// then the record budget, the route, the node's capacity and its reset budget. The outcome is
// intents: the refusal the operator reads (recorded, or counted past the record budget), or
// `openRelay` for the shell to record and relay.
extension GatewayCore {
    /// The request an operator's `connect` makes, or the refusal of names that break the rules.
    /// Names are checked before they are looked up, recorded or logged (docs/TUNNEL.md §6).
    package func streamRequest(
        on id: ID, stream: StreamID, operatorName: String, roles: [String], node: String, service: String,
        parameters: [String: String]?, interactive: Bool, policyVersion: String, recordedOneByOne: Bool
    ) -> StreamRequestCheck<ID> {
        let actor =
            auditOperator(id, roles: roles)
            ?? AuditOperator(
                peer: AuditPeer(session: "?", source: "?"), name: operatorName, subject: nil, serial: nil, roles: roles)
        do throws(NameProblem) {
            try Names.check(node, as: .node)
            try Names.check(service, as: .service)
            for key in (parameters ?? [:]).keys { try Names.check(key, as: .parameterKey) }
        } catch {
            let refuse = Intent.refuseStream(id, stream, code: TunnelErrorCode.badRequest, sentence: error.message)
            guard recordedOneByOne else {
                return .refused([.countUnrecordedStream(operatorName, outcome: "bad_request"), refuse])
            }
            return .refused([
                .log(
                    .notice, "stream refused",
                    ["operator.name": "\(operatorName)", "stream.id": "\(stream)", "reason": "\(error.message)"]),
                .record(
                    .streamDeny(
                        StreamRequestParties(actor: actor, target: nil), StreamGrant(),
                        StreamDenial(outcome: "bad_request", reason: error.message))),
                refuse,
            ])
        }
        return .checked(
            StreamRequest(
                connection: id, stream: stream, operatorName: operatorName, roles: roles, actor: actor,
                target: StreamTarget(
                    stream: "\(actor.peer.session)/\(stream)", node: node, service: service, parameters: parameters,
                    policyVersion: policyVersion),
                interactive: interactive,
                logMetadata: [
                    "operator.name": "\(operatorName)", "node.name": "\(node)", "service": "\(service)",
                    "stream.id": "\(stream)", "policy.version": "\(policyVersion)",
                ],
                recordedOneByOne: recordedOneByOne))
    }

    /// Decides a request whose names passed: the policy (with the node's recorded `labels`), the
    /// operator's record budget, the `carrier` the shell found (`carrierHasRoom`: whether its
    /// connection takes one more stream), the node's share of streams and its reset budget.
    /// Ends with `openRelay` or a refusal of the stream (and maybe the operator's connection).
    package mutating func admitStream(
        _ request: StreamRequest<ID>, policy: Policy, labels: [String: String], carrier: StreamCarrier<ID>,
        carrierHasRoom: Bool, now: Moment
    ) -> [Intent] {
        var request = request
        let (node, service) = (request.target.node, request.target.service)
        switch policy.decide(roles: request.roles, node: node, labels: labels, service: service) {
        case .denied(let reason):
            return refuse(request, TunnelErrorCode.denied, reason, outcome: "denied")
        case .allowed(let rule):
            request.logMetadata["policy.rule"] = "\(rule)"
            request.grant.rule = rule
        }
        guard request.recordedOneByOne else {
            return refuse(
                request, .enhanceYourCalm,
                "you opened more than \(limits.streamRecordsPerMinute) streams in a minute (or \(limits.streamRecordBurst) at once), the most the gateway records for one operator; wait a little",
                outcome: "rate_limited")
        }
        // The identity a kubernetes stream acts as: the certificate's name and the policy's
        // groups, never anything the operator sent.
        if service == TunnelProtocol.kubernetesService {
            request.grant.kubeUser = request.operatorName
            request.grant.kubeGroups = policy.kubernetesGroups(roles: request.roles, node: node, labels: labels)
        }
        guard let link = carrier.link else { return unroutable(request, carrier) }
        if case .peer(let replica, _) = carrier { request.grant.viaReplica = replica }
        if let busy = nodeBusy(request, hasRoom: carrierHasRoom, isAdmin: policy.isAdmin(roles: request.roles)) {
            return refuse(request, TunnelErrorCode.nodeBusy, busy, outcome: "busy")
        }
        if let refused = resetBudgetRefusal(request, now: now) { return refused }
        return [.openRelay(request, via: link)]
    }

    /// The refusal of a stream nothing can carry now, saying why.
    private func unroutable(_ request: StreamRequest<ID>, _ carrier: StreamCarrier<ID>) -> [Intent] {
        let (node, service) = (request.target.node, request.target.service)
        let offline = TunnelErrorCode.explain(Failure(TunnelErrorCode.unknownNode, ""), node: node, service: service)
        let sentence =
            switch carrier {
            case .dialing(let replica): "\(offline) (the link to replica \(replica) is not up yet; retry)"
            case .none(let reason?): "\(offline) (\(reason))"
            case .none(nil), .local, .peer: offline
            }
        return refuse(request, TunnelErrorCode.unknownNode, sentence, outcome: "unavailable")
    }

    /// Why the operator may not open one more stream to the node now, or nil: its own budget on
    /// the node, the slots kept for admins, or the node's capacity.
    private func nodeBusy(_ request: StreamRequest<ID>, hasRoom: Bool, isAdmin: Bool) -> String? {
        let node = request.target.node
        switch streamShare.decide(
            node: node, operatorName: request.operatorName, isAdmin: isAdmin, nodeCapacity: limits.nodeCapacity)
        {
        case .nodeBusy(let open):
            return TunnelErrorCode.busy(node: node, open: open)
        case .operatorBudget(let open):
            return "you have \(open) streams open to \(node), the most one operator may have on a node; close one first"
        case .admit:
            return hasRoom ? nil : TunnelErrorCode.busy(node: node, open: streamShare.openStreams(on: node))
        }
    }

    /// The refusal when the operator reset too many streams to the node (`RelayedResetBudget`),
    /// with its disconnection when it reset most of them; nil to go on.
    private mutating func resetBudgetRefusal(_ request: StreamRequest<ID>, now: Moment) -> [Intent]? {
        let node = request.target.node
        var budget = relayedResets[node] ?? RelayedResetBudget(nodeAllowance: limits.nodeResetAllowance)
        let decision = budget.decide(request.operatorName, now: now.loop)
        relayedResets[node] = budget
        guard decision != .admit else { return nil }
        let seconds = (budget.remaining(now: now.loop) + 999) / 1000
        let message =
            "you reset too many streams to \(node) within \(Limits.abuseWindow); so that the node stays up for everyone, new streams to it are refused for \(seconds) s"
        var intents = refuse(request, .enhanceYourCalm, message, outcome: "throttled")
        if decision == .disconnect {
            intents += [
                .log(.warning, "operator disconnected for rapid resets through the gateway", request.logMetadata),
                .abort(request.connection, Failure(.enhanceYourCalm, message)),
            ]
        }
        return intents
    }

    /// A refusal the operator reads, recorded (or counted, beyond the record budget).
    package func refuse(_ request: StreamRequest<ID>, _ code: ErrorCode, _ message: String, outcome: String) -> [Intent]
    {
        let refuse = Intent.refuseStream(request.connection, request.stream, code: code, sentence: message)
        guard request.recordedOneByOne else {
            return [.countUnrecordedStream(request.operatorName, outcome: outcome), refuse]
        }
        return [
            .log(.notice, "stream refused", request.logMetadata.merging(["reason": "\(message)"]) { $1 }),
            .record(
                .streamDeny(request.requestParties, request.grant, StreamDenial(outcome: outcome, reason: message))),
            refuse,
        ]
    }

    // MARK: - Relayed streams

    /// The shell opened the node's end of an admitted stream: it counts against the node's share.
    package mutating func streamOpened(node: String, operatorName: String) {
        streamShare.opened(node: node, operatorName: operatorName)
    }

    /// A relayed stream ended; `resetByOperator` when the operator's side reset it, which
    /// counts against the node's reset budget.
    package mutating func streamEnded(node: String, operatorName: String, resetByOperator: Bool, now: Moment) {
        streamShare.closed(node: node, operatorName: operatorName)
        guard resetByOperator else { return }
        relayedResets[node, default: RelayedResetBudget(nodeAllowance: limits.nodeResetAllowance)]
            .recordReset(by: operatorName, now: now.loop)
    }

    /// Streams open to `node` for operators, for the busy sentence a peer replica's request reads.
    package func openStreams(on node: String) -> Int {
        streamShare.openStreams(on: node)
    }
}

/// An operator's stream request after its names were checked at the door.
package enum StreamRequestCheck<ID: Hashable> {
    case checked(StreamRequest<ID>)
    /// Refused: the intents say so to the operator and the audit log.
    case refused([GatewayIntent<ID>])
}
