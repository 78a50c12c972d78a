import Foundation
import Multiplex
import TunnelAudit
import TunnelRuntime

// An admitted stream relayed to its node: the recorders that watch it, and its close record.
extension Gateway {
    func relay(
        _ request: OperatorStream, from connection: MuxConnection, to nodeConnection: MuxConnection,
        recorder: ShellRecorder?
    ) {
        let (stream, target) = (request.stream, request.target)
        let opened = Date()
        let kubernetes = request.grant.kubeUser.map {
            KubernetesIdentity(user: $0, groups: request.grant.kubeGroups ?? [])
        }
        // Each API request of a kubernetes stream is its own audit record.
        let kubeRecorder = kubernetes.map { identity in
            KubeRequestRecorder(
                parties: request.parties, identity: identity, now: { [loop] in loop.now },
                write: { [unowned self] event in audit?.record(event) })
        }
        let gate = StreamOpenGate { [unowned connection] handler in connection.attach(handler, to: stream) }
        let relay = StreamRelay(first: (connection, stream), secondConnection: nodeConnection) {
            [unowned self] relay, outcome in
            switch outcome {
            case .accepted(let metadata):
                gate.afterOpening { [unowned self] in
                    do {
                        // A node's refusal (an unknown log source, say) travels on to the operator.
                        try connection.accept(stream, metadata: metadata)
                        logger.info("stream open", metadata: request.logMetadata)
                    } catch {
                        nodeConnection.reset(relay.second.stream, code: .cancel)
                    }
                }
            case .ended(let failure):
                relayEnded(
                    relay, failure: failure, request: request, operatorConnection: connection,
                    nodeConnection: nodeConnection, opened: opened, recorders: (recorder, kubeRecorder))
            }
        }
        if let recorder {
            relay.tap = Self.recordingTap(recorder)
        } else if let kubeRecorder {
            relay.tap = { bytes, direction in
                kubeRecorder.feed(bytes, direction: direction).map { Failure(TunnelErrorCode.badRequest, $0) }
            }
        }
        do {
            let metadata = try Self.serviceMetadata(request, kubernetes: kubernetes)
            try relay.openSecond(metadata: metadata, interactive: request.interactive)
        } catch {
            logger.info(
                "stream refused: cannot open a stream to the node",
                metadata: request.logMetadata.merging(["error": "\(error)"]) { $1 })
            audit?.record(
                .streamClose(
                    request.parties,
                    StreamClose(outcome: .refused, reason: "cannot open a stream to the node: \(error)")))
            connection.reset(stream, code: .refusedStream)
            return
        }
        relays[ObjectIdentifier(relay)] = relay
        core.streamOpened(node: target.node, operatorName: request.operatorName)
        openWhenDurable(relay, through: gate)
    }

    /// What the node is asked to open: the service, its parameters or the kubernetes identity;
    /// through a peer link, wrapped with the node the holding replica opens it on.
    private static func serviceMetadata(_ request: OperatorStream, kubernetes: KubernetesIdentity?) throws -> [UInt8] {
        let target = request.target
        let service = ServiceRequest(
            service: target.service, parameters: kubernetes == nil ? target.parameters : nil, kubernetes: kubernetes)
        guard request.grant.viaReplica != nil else { return try TunnelProtocol.encode(service) }
        return try TunnelProtocol.encode(
            PeerStreamRequest(
                node: target.node, request: service, operator: request.operatorName, stream: target.stream))
    }

    /// A relayed stream ended: the node's share and reset budget learn it, and its close record
    /// says why, how many bytes went each way, and what its recorders kept.
    private func relayEnded(
        _ relay: StreamRelay, failure: Failure?, request: OperatorStream, operatorConnection: MuxConnection,
        nodeConnection: MuxConnection, opened: Date, recorders: (shell: ShellRecorder?, kube: KubeRequestRecorder?)
    ) {
        relays[ObjectIdentifier(relay)] = nil
        core.streamEnded(
            node: request.target.node, operatorName: request.operatorName,
            resetByOperator: relay.resetFrom == .fromFirst, now: moment)
        logger.debug(
            "stream ended",
            metadata: request.logMetadata.merging(["reason": "\(failure.map { "\($0)" } ?? "finished")"]) { $1 })
        var close = StreamCloseReason.close(
            for: failure, operatorConnection: operatorConnection, nodeConnection: nodeConnection)
        close.bytesToNode = Int64(relay.first.bytesReceived)
        close.bytesFromNode = Int64(relay.second.bytesReceived)
        close.durationMs = Int64(Date().timeIntervalSince(opened) * 1000)
        if let kubeRecorder = recorders.kube {
            kubeRecorder.finish()
            close.kubeRequests = Int64(kubeRecorder.recorded)
        }
        if let recorder = recorders.shell {
            Self.finishRecording(recorder, file: request.grant.recording, into: &close)
        }
        audit?.record(.streamClose(request.parties, close))
    }

    /// Lets bytes through `relay` once its open record is durable: the node's stream is open
    /// already, so a new stream costs the longer of the sync and the node's dial, not their sum.
    private func openWhenDurable(_ relay: StreamRelay, through gate: StreamOpenGate) {
        guard audit != nil else { return gate.open(into: relay.first) }
        gate.hold()
        groupCommit.afterAuditSync { [audit] synced in
            if synced { return gate.open(into: relay.first) }
            relay.cut(
                Failure(
                    TunnelErrorCode.auditUnavailable,
                    "the gateway cannot write its audit log (\(audit?.failure ?? "")), so it admits no new streams until that is fixed"
                ))
        }
    }

    /// A shell that cannot be recorded does not go on unrecorded: the relay is cut.
    private static func recordingTap(_ recorder: ShellRecorder) -> (ArraySlice<UInt8>, StreamRelay.Direction) ->
        Failure?
    {
        { bytes, direction in
            recorder.feed(bytes, direction: direction)
            return recorder.writeFailure.map {
                Failure(
                    TunnelErrorCode.auditUnavailable,
                    "the gateway cannot write this shell's recording (\($0.message)), so it ended the session")
            }
        }
    }

    private static func finishRecording(_ recorder: ShellRecorder, file: String?, into close: inout StreamClose) {
        close.recording = file
        do {
            let (sha256, bytes) = try recorder.finish()
            close.recordingSha256 = sha256
            close.recordingBytes = Int64(bytes)
        } catch {
            close.recordingError = "\(error)"
        }
    }
}
