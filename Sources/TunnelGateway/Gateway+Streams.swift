import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelRuntime
import TunnelTLS
import TunnelText

/// One operator's request for a stream while the gateway decides it: who asked, for what, and
/// what was decided so far, as its audit records will name them.
struct StreamRequest {
    let operatorName: String
    let roles: [String]
    let connection: MuxConnection
    let stream: StreamID
    let actor: AuditOperator
    let target: StreamTarget
    var grant = StreamGrant()
    var logMetadata: Logger.Metadata
    /// False beyond the operator's record budget: then nothing is recorded or logged one by one.
    let recordedOneByOne: Bool

    var parties: StreamParties {
        StreamParties(
            stream: target.stream, session: actor.peer.session, operatorName: operatorName, node: target.node,
            service: target.service)
    }
}

// Streams operators open to nodes: checked against the policy, recorded in the audit log, relayed.
extension Gateway {
    func connect(
        operatorName: String, roles: [String], connection: MuxConnection, stream: StreamID, node: String,
        service: String,
        parameters: [String: String]?, interactive: Bool
    ) {
        let recordedOneByOne = streamRecords.mayRecord(operatorName, now: loop.now)
        let actor = auditOperator(operatorName, connection, roles: roles)
        // Names are checked before they are looked up, recorded or logged (docs/TUNNEL.md §6).
        do throws(NameProblem) {
            try Names.check(node, as: .node)
            try Names.check(service, as: .service)
            for key in (parameters ?? [:]).keys { try Names.check(key, as: .parameterKey) }
        } catch {
            guard recordedOneByOne else {
                streamRecords.count(operatorName, outcome: "bad_request")
                return refuseStream(stream, on: connection, code: TunnelErrorCode.badRequest, message: error.message)
            }
            logger.notice(
                "stream refused",
                metadata: ["operator.name": "\(operatorName)", "stream.id": "\(stream)", "reason": "\(error.message)"])
            audit?.record(
                .streamDeny(
                    actor, target: nil, StreamGrant(), StreamDenial(outcome: "bad_request", reason: error.message)))
            return refuseStream(stream, on: connection, code: TunnelErrorCode.badRequest, message: error.message)
        }
        let session = core.connections[ObjectIdentifier(connection)]?.sessionID ?? "?"
        var request = StreamRequest(
            operatorName: operatorName, roles: roles, connection: connection, stream: stream, actor: actor,
            target: StreamTarget(
                stream: "\(session)/\(stream)", node: node, service: service, parameters: parameters,
                policyVersion: authority.policy.version),
            logMetadata: [
                "operator.name": "\(operatorName)", "node.name": "\(node)", "service": "\(service)",
                "stream.id": "\(stream)",
                "policy.version": "\(authority.policy.version)",
            ],
            recordedOneByOne: recordedOneByOne)
        guard let nodeConnection = admit(&request) else { return }
        let recorder: ShellRecorder?
        switch startRecording(&request) {
        case .success(let started): recorder = started
        case .failure(let refusal): return refuse(request, refusal.code, refusal.message, outcome: refusal.outcome)
        }
        // The open record is on disk before a byte moves; without it, no stream. It is synced with
        // the loop turn's other records (`GroupCommit`) while the node already opens its end.
        guard audit?.record(.streamOpen(actor, request.target, request.grant)) != false else {
            return refuse(
                request, TunnelErrorCode.auditUnavailable,
                "the gateway cannot write its audit log (\(audit?.failure ?? "")), so it admits no new streams until that is fixed",
                outcome: "audit_unavailable")
        }
        relay(request, to: nodeConnection, recorder: recorder, interactive: interactive)
    }

    /// The policy, the node's presence and the budgets; the node's connection, or nil once refused.
    private func admit(_ request: inout StreamRequest) -> MuxConnection? {
        let (operatorName, node, service) = (request.operatorName, request.target.node, request.target.service)
        switch authority.decide(roles: request.roles, node: node, service: service) {
        case .denied(let reason):
            refuse(request, TunnelErrorCode.denied, reason, outcome: "denied")
            return nil
        case .allowed(let rule):
            request.logMetadata["policy.rule"] = "\(rule)"
            request.grant.rule = rule
        }
        guard request.recordedOneByOne else {
            refuse(
                request, .enhanceYourCalm,
                "you opened more than \(admission.limits.streamRecordsPerOperatorPerMinute) streams in a minute (or \(TokenBucket.burst(perMinute: admission.limits.streamRecordsPerOperatorPerMinute)) at once), the most the gateway records for one operator; wait a little",
                outcome: "rate_limited")
            return nil
        }
        // The identity a kubernetes stream acts as: the certificate's name and the policy's
        // groups, never anything the operator sent.
        if service == TunnelProtocol.kubernetesService {
            request.grant.kubeUser = operatorName
            request.grant.kubeGroups = authority.kubernetesGroups(roles: request.roles, node: node)
        }
        let nodeConnection: MuxConnection
        let offline = TunnelErrorCode.explain(Failure(TunnelErrorCode.unknownNode, ""), node: node, service: service)
        switch carrier(for: node) {
        case .local(let session):
            nodeConnection = session
        case .peer(let replica, let link):
            nodeConnection = link
            request.grant.viaReplica = replica
        case .dialing(let replica):
            refuse(
                request, TunnelErrorCode.unknownNode,
                "\(offline) (the link to replica \(replica) is not up yet; retry)", outcome: "unavailable")
            return nil
        case .none(let reason):
            refuse(
                request, TunnelErrorCode.unknownNode, reason.map { "\(offline) (\($0))" } ?? offline,
                outcome: "unavailable")
            return nil
        }
        if let busy = nodeBusy(node, nodeConnection, operatorName: operatorName, roles: request.roles) {
            refuse(request, TunnelErrorCode.nodeBusy, busy, outcome: "busy")
            return nil
        }
        if let (message, disconnect) = resetBudgetRefusal(node, operatorName: operatorName) {
            refuse(request, .enhanceYourCalm, message, outcome: "throttled")
            if disconnect {
                logger.warning(
                    "operator disconnected for rapid resets through the gateway", metadata: request.logMetadata)
                request.connection.abort(Failure(.enhanceYourCalm, message))
            }
            return nil
        }
        return nodeConnection
    }

    /// A refusal the operator reads, recorded (or counted, beyond the record budget).
    private func refuse(_ request: StreamRequest, _ code: ErrorCode, _ message: String, outcome: String) {
        if request.recordedOneByOne {
            logger.notice("stream refused", metadata: request.logMetadata.merging(["reason": "\(message)"]) { $1 })
            audit?.record(
                .streamDeny(
                    request.actor, target: request.target, request.grant,
                    StreamDenial(outcome: outcome, reason: message)))
        } else {
            streamRecords.count(request.operatorName, outcome: outcome)
        }
        refuseStream(request.stream, on: request.connection, code: code, message: message)
    }

    struct RecordingRefusal: Error {
        let code: ErrorCode
        let message: String
        let outcome: String
    }

    /// A shell is recorded by the gateway itself, so an operator who may only use `shell` (not
    /// the end-to-end encrypted `ssh`) is always on record. Nil for other services.
    private func startRecording(_ request: inout StreamRequest) -> Result<ShellRecorder?, RecordingRefusal> {
        guard request.target.service == TunnelProtocol.shellService, let directory = configuration.recordingsDirectory
        else { return .success(nil) }
        do {
            let shell = try ShellParameters(request.target.parameters ?? [:])
            let file = request.target.stream.replacingOccurrences(of: "/", with: "-") + ".cast"
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let recorder = try ShellRecorder(
                path: "\(directory)/\(file)", parameters: shell,
                recordInput: authority.policy.recordsInput(roles: request.roles))
            request.grant.recording = file
            return .success(recorder)
        } catch let failure as Failure {
            return .failure(
                RecordingRefusal(code: TunnelErrorCode.badRequest, message: failure.reason, outcome: "bad_request"))
        } catch {
            return .failure(
                RecordingRefusal(
                    code: TunnelErrorCode.auditUnavailable,
                    message: "the gateway cannot record this shell session (\(error)), so it does not open it",
                    outcome: "audit_unavailable"))
        }
    }
}
