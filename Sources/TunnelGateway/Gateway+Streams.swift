import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelRuntime
import TunnelTLS
import TunnelText

// Streams operators open to nodes: decided by the core (names, policy, budgets, route), then
// recorded in the audit log and relayed here.
extension Gateway {
    typealias OperatorStream = StreamRequest<ObjectIdentifier>

    func connect(
        operatorName: String, roles: [String], connection: MuxConnection, stream: StreamID, node: String,
        service: String, parameters: [String: String]?, interactive: Bool
    ) {
        let check = core.streamRequest(
            on: ObjectIdentifier(connection), stream: stream, operatorName: operatorName, roles: roles, node: node,
            service: service, parameters: parameters, interactive: interactive,
            policyVersion: authority.policy.version,
            recordedOneByOne: streamRecords.mayRecord(operatorName, now: loop.now))
        guard case .checked(let request) = check else {
            if case .refused(let intents) = check { enact(intents) }
            return
        }
        let carrier = carrier(for: node)
        let hasRoom = carrier.link.flatMap { connections[$0]?.connection.canOpenStream } ?? false
        enact(
            core.admitStream(
                request, policy: authority.policy, labels: authority.labels(of: node), carrier: carrier,
                carrierHasRoom: hasRoom, now: moment))
    }

    /// An admitted stream: its shell recording started, its open record written, then relayed
    /// on `link` (the node's session, or the peer link to its replica).
    func openRelay(_ admitted: OperatorStream, via link: ObjectIdentifier) {
        var request = admitted
        guard let operatorConnection = connections[request.connection]?.connection,
            let nodeConnection = connections[link]?.connection
        else { return }
        let recorder: ShellRecorder?
        switch startRecording(&request) {
        case .success(let started): recorder = started
        case .failure(let refusal):
            return enact(core.refuse(request, refusal.code, refusal.message, outcome: refusal.outcome))
        }
        // The open record is on disk before a byte moves; without it, no stream. It is synced with
        // the loop turn's other records (`GroupCommit`) while the node already opens its end.
        guard audit?.record(.streamOpen(request.requestParties, request.grant)) != false else {
            return enact(
                core.refuse(
                    request, TunnelErrorCode.auditUnavailable,
                    "the gateway cannot write its audit log (\(audit?.failure ?? "")), so it admits no new streams until that is fixed",
                    outcome: "audit_unavailable"))
        }
        relay(request, from: operatorConnection, to: nodeConnection, recorder: recorder)
    }

    struct RecordingRefusal: Error {
        let code: ErrorCode
        let message: String
        let outcome: String
    }

    /// A shell is recorded by the gateway itself, so an operator who may only use `shell` (not
    /// the end-to-end encrypted `ssh`) is always on record. Nil for other services.
    private func startRecording(_ request: inout OperatorStream) -> Result<ShellRecorder?, RecordingRefusal> {
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
            request.recording(into: file)
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
