import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelRuntime
import TunnelText
import TunnelTLS

// Operators' requests at the gateway: node lists, renewals, administration, and the streams they
// open to nodes — checked against the policy, recorded in the audit log, relayed.
extension Gateway {
    func handleOperatorRequest(from name: String, connection: MuxConnection, stream: StreamID, metadata: [UInt8], interactive: Bool) {
        // The roles now (not at connect): a changed role applies to the next request.
        let roles = authority.roles(of: name)
        switch TunnelProtocol.decode(OperatorRequest.self, from: metadata) {
        case .listNodes:
            connection.reply(NodeList(nodes: nodeStatuses(visibleToRoles: roles), warnings: warnings, gatewayTime: authority.now), on: stream)
        case .connect(let node, let service, let parameters):
            connect(operatorName: name, roles: roles, connection: connection, stream: stream, node: node, service: service,
                    parameters: parameters, interactive: interactive)
        case .renew(let csr):
            guard let presented = connection.peerCertificate else { return connection.reset(stream, code: TunnelErrorCode.badRequest) }
            do {
                let (pem, notAfter) = try authority.renewOperator(name: name, presented: presented, csr: csr)
                certificateDeadlines[ObjectIdentifier(connection)] = notAfter
                audit?.record("renew", operatorFields(name, connection, roles: roles).merging(["outcome": "ok", "not_after": .int(notAfter)]) { $1 })
                connection.reply(CertificateReply(gatewayTime: authority.now, certificate: pem), on: stream)
            } catch {
                connection.reply(CertificateReply(gatewayTime: authority.now, error: error.message), on: stream)
            }
        case .admin(let request):
            guard authority.policy.isAdmin(roles: roles) else {
                logger.notice("admin request denied", metadata: ["operator.name": "\(name)"])
                audit?.record("admin", operatorFields(name, connection, roles: roles).merging(["action": .string(request.summary), "outcome": "denied", "reason": "no admin role"]) { $1 })
                connection.reply(AdminReply(error: "you (\(name), roles \(roles.joined(separator: ", "))) have no admin role in policy \(authority.policy.version)"), on: stream)
                return
            }
            connection.reply(administer(request, actor: "operator \(name)", actorFields: operatorFields(name, connection, roles: roles)), on: stream)
        case .auditRead(let request):
            serveAuditRead(request, operatorName: name, roles: roles, connection: connection, stream: stream)
        case nil:
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }

    /// Carries out an admin request from an admin operator or the local admin socket.
    public func administer(_ request: AdminRequest, actor: String, actorFields: [String: AuditValue?] = [:]) -> AdminReply {
        var (reply, effects) = authority.administer(request, actor: actor)
        let recorded = audit?.record(request.auditType, actorFields.merging([
            "actor": .string(actor), "action": .string(request.summary), "outcome": .string(reply.error == nil ? "ok" : "refused"),
            "reason": reply.error.map { .string($0) }, "token": reply.token.flatMap { try? JoinToken.parse($0) }.map { .string($0.id) },
            "node": request.nodeName.map { .string($0) },
        ]) { $1 }, durable: true)
        if recorded == false, case .recordAuditRead = request {
            return AdminReply(error: "the audit log cannot be written, so reading it cannot be recorded: \(audit?.failure ?? "")")
        }
        if request == .listNodes, reply.error == nil { reply.nodes = nodeStatuses() }
        logger.notice("admin request", metadata: ["actor": "\(actor)", "request": "\(request.summary)", "error": "\(reply.error ?? "none")"])
        for effect in effects {
            carryOut(effect)
            // A removed node leaves no trace in this run's view either.
            if case .removeNode(let name) = request { nodes[name] = nil }
            // The other replicas of a cluster end their sessions of the same node or operator.
            switch effect {
            case .disconnectNode(let name, let reason): cluster?.publish(.nodeCut, subject: name, detail: reason)
            case .disconnectOperator(let name, let reason): cluster?.publish(.operatorCut, subject: name, detail: reason)
            }
        }
        return reply
    }

    /// Ends the live sessions an admin command (here or at another replica) cut off.
    func carryOut(_ effect: FleetAuthority.Effect) {
        switch effect {
        case .disconnectNode(let name, let reason):
            nodes[name]?.connection?.abort(Failure(TunnelErrorCode.revoked, "node \(name) \(reason)"))
        case .disconnectOperator(let name, let reason):
            for case .operator(name, let connection) in connections.values {
                connection.abort(Failure(TunnelErrorCode.revoked, "operator \(name) \(reason)"))
            }
        }
    }

    private func connect(operatorName: String, roles: [String], connection: MuxConnection, stream: StreamID, node: String, service: String,
                         parameters: [String: String]?, interactive: Bool) {
        // Beyond the operator's record budget, nothing is recorded or logged one by one.
        let recordedOneByOne = streamRecords.mayRecord(operatorName, now: loop.now)
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
            logger.notice("stream refused", metadata: ["operator.name": "\(operatorName)", "stream.id": "\(stream)", "reason": "\(error.message)"])
            audit?.record("stream_deny", operatorFields(operatorName, connection, roles: roles).merging([
                "outcome": "bad_request", "reason": .string(error.message),
            ]) { $1 })
            return refuseStream(stream, on: connection, code: TunnelErrorCode.badRequest, message: error.message)
        }
        var logMetadata: Logger.Metadata = [
            "operator.name": "\(operatorName)", "node.name": "\(node)", "service": "\(service)", "stream.id": "\(stream)",
            "policy.version": "\(authority.policy.version)",
        ]
        let session = sessionIDs[ObjectIdentifier(connection)] ?? "?"
        let streamKey = "\(session)/\(stream)"
        var fields = operatorFields(operatorName, connection, roles: roles).merging([
            "stream": .string(streamKey), "node": .string(node), "service": .string(service),
            "parameters": AuditValue.map(parameters), "policy_version": .string(authority.policy.version),
        ]) { $1 }
        func refuse(_ code: ErrorCode, _ message: String, outcome: String) {
            if recordedOneByOne {
                logger.notice("stream refused", metadata: logMetadata.merging(["reason": "\(message)"]) { $1 })
                audit?.record("stream_deny", fields.merging(["outcome": .string(outcome), "reason": .string(message)]) { $1 })
            } else {
                streamRecords.count(operatorName, outcome: outcome)
            }
            refuseStream(stream, on: connection, code: code, message: message)
        }
        switch authority.decide(roles: roles, node: node, service: service) {
        case .denied(let reason):
            return refuse(TunnelErrorCode.denied, reason, outcome: "denied")
        case .allowed(let rule):
            logMetadata["policy.rule"] = "\(rule)"
            fields["rule"] = .string(rule)
        }
        guard recordedOneByOne else {
            return refuse(.enhanceYourCalm, "you opened more than \(admission.limits.streamRecordsPerOperatorPerMinute) streams in a minute (or \(TokenBucket.burst(perMinute: admission.limits.streamRecordsPerOperatorPerMinute)) at once), the most the gateway records for one operator; wait a little", outcome: "rate_limited")
        }
        // The identity a kubernetes stream acts as: the certificate's name and the policy's
        // groups, never anything the operator sent.
        var kubernetes: KubernetesIdentity?
        if service == TunnelProtocol.kubernetesService {
            let identity = KubernetesIdentity(user: operatorName, groups: authority.kubernetesGroups(roles: roles, node: node))
            kubernetes = identity
            fields["kube_user"] = .string(identity.user)
            fields["kube_groups"] = .strings(identity.groups)
        }
        guard let record = nodes[node], let nodeConnection = record.connection, !nodeConnection.isEnding else {
            return refuse(TunnelErrorCode.unknownNode, TunnelErrorCode.explain(Failure(TunnelErrorCode.unknownNode, ""), node: node, service: service), outcome: "unavailable")
        }
        if let busy = nodeBusy(node, nodeConnection, operatorName: operatorName, roles: roles) {
            return refuse(TunnelErrorCode.nodeBusy, busy, outcome: "busy")
        }
        if let (message, disconnect) = resetBudgetRefusal(node, operatorName: operatorName) {
            refuse(.enhanceYourCalm, message, outcome: "throttled")
            if disconnect {
                logger.warning("operator disconnected for rapid resets through the gateway", metadata: logMetadata)
                connection.abort(Failure(.enhanceYourCalm, message))
            }
            return
        }
        // A shell is recorded by the gateway itself, so an operator who may only use `shell` (not
        // the end-to-end encrypted `ssh`) is always on record.
        var recorder: ShellRecorder?
        if service == TunnelProtocol.shellService, let directory = configuration.recordingsDirectory {
            do {
                let shell = try ShellParameters(parameters ?? [:])
                let file = streamKey.replacingOccurrences(of: "/", with: "-") + ".cast"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                recorder = try ShellRecorder(path: "\(directory)/\(file)", parameters: shell,
                                             recordInput: authority.policy.recordsInput(roles: roles))
                fields["recording"] = .string(file)
            } catch let failure as Failure {
                return refuse(TunnelErrorCode.badRequest, failure.reason, outcome: "bad_request")
            } catch {
                return refuse(TunnelErrorCode.auditUnavailable, "the gateway cannot record this shell session (\(error)), so it does not open it", outcome: "audit_unavailable")
            }
        }
        // The open record is on disk before a byte moves; without it, no stream. It is synced with
        // the loop turn's other records (`GroupCommit`) while the node already opens its end.
        guard audit?.record("stream_open", fields) != false else {
            return refuse(TunnelErrorCode.auditUnavailable, "the gateway cannot write its audit log (\(audit?.failure ?? "")), so it admits no new streams until that is fixed", outcome: "audit_unavailable")
        }
        let opened = Date()
        var closeFields: [String: AuditValue?] = [
            "stream": .string(streamKey), "session": .string(session), "operator": .string(operatorName),
            "node": .string(node), "service": .string(service),
        ]
        // Each API request of a kubernetes stream is its own audit record.
        let kubeRecorder = kubernetes.map { identity in
            KubeRequestRecorder(base: closeFields.merging(["kube_user": .string(identity.user), "kube_groups": .strings(identity.groups)]) { $1 },
                                now: { [loop] in loop.now }, write: { [unowned self] type, fields in audit?.record(type, fields) })
        }
        let gate = StreamOpenGate { [unowned connection] handler in connection.attach(handler, to: stream) }
        let relay = StreamRelay(first: (connection, stream), secondConnection: nodeConnection) { [unowned self] relay, outcome in
            switch outcome {
            case .accepted(let metadata):
                gate.afterOpening { [unowned self] in
                    do {
                        // A node's refusal (an unknown log source, say) travels on to the operator.
                        try connection.accept(stream, metadata: metadata)
                        logger.info("stream open", metadata: logMetadata)
                    } catch {
                        nodeConnection.reset(relay.second.stream, code: .cancel)
                    }
                }
            case .ended(let failure):
                relays[ObjectIdentifier(relay)] = nil
                streamShare.closed(node: node, operatorName: operatorName)
                if let kubeRecorder {
                    kubeRecorder.finish()
                    closeFields["kube_requests"] = .int(Int64(kubeRecorder.recorded))
                }
                if relay.resetFrom == .fromFirst {
                    relayedResets[node, default: RelayedResetBudget(nodeAllowance: configuration.session.maxResetsPerWindow)]
                        .recordReset(by: operatorName, now: loop.now)
                }
                if let recorder {
                    closeFields["recording"] = fields["recording"] ?? nil
                    do {
                        let (sha256, bytes) = try recorder.finish()
                        closeFields["recording_sha256"] = .string(sha256)
                        closeFields["recording_bytes"] = .int(Int64(bytes))
                    } catch {
                        closeFields["recording_error"] = .string("\(error)")
                    }
                }
                logger.debug("stream ended", metadata: logMetadata.merging(["reason": "\(failure.map { "\($0)" } ?? "finished")"]) { $1 })
                closeFields.merge(StreamCloseReason.fields(for: failure, operatorConnection: connection, nodeConnection: nodeConnection)) { $1 }
                closeFields.merge([
                    "bytes_to_node": .int(Int64(relay.first.bytesReceived)), "bytes_from_node": .int(Int64(relay.second.bytesReceived)),
                    "duration_ms": .int(Int64(Date().timeIntervalSince(opened) * 1000)),
                ]) { $1 }
                audit?.record("stream_close", closeFields)
            }
        }
        // A shell that cannot be recorded does not go on unrecorded: the relay is cut.
        relay.tap = recorder.map { recorder in
            { bytes, direction in
                recorder.feed(bytes, direction: direction)
                return recorder.writeFailure.map {
                    Failure(TunnelErrorCode.auditUnavailable, "the gateway cannot write this shell's recording (\($0.message)), so it ended the session")
                }
            }
        }
        if let kubeRecorder {
            relay.tap = { bytes, direction in
                kubeRecorder.feed(bytes, direction: direction).map { Failure(TunnelErrorCode.badRequest, $0) }
            }
        }
        do {
            let request = ServiceRequest(service: service, parameters: kubernetes == nil ? parameters : nil, kubernetes: kubernetes)
            try relay.openSecond(metadata: TunnelProtocol.encode(request), interactive: interactive)
        } catch {
            logger.info("stream refused: cannot open a stream to the node", metadata: logMetadata.merging(["error": "\(error)"]) { $1 })
            audit?.record("stream_close", closeFields.merging(["outcome": "refused", "reason": .string("cannot open a stream to the node: \(error)")]) { $1 })
            connection.reset(stream, code: .refusedStream)
            return
        }
        relays[ObjectIdentifier(relay)] = relay
        streamShare.opened(node: node, operatorName: operatorName)
        openWhenDurable(relay, through: gate)
    }

    /// Lets bytes through `relay` once its open record is durable: the node's stream is open
    /// already, so a new stream costs the longer of the sync and the node's dial, not their sum.
    private func openWhenDurable(_ relay: StreamRelay, through gate: StreamOpenGate) {
        guard audit != nil else { return gate.open(into: relay.first) }
        gate.hold()
        groupCommit.afterAuditSync { [audit] synced in
            if synced { return gate.open(into: relay.first) }
            relay.cut(Failure(TunnelErrorCode.auditUnavailable,
                              "the gateway cannot write its audit log (\(audit?.failure ?? "")), so it admits no new streams until that is fixed"))
        }
    }

    /// Why `operatorName` may not open one more stream to `node` now because of the resets it
    /// caused there (`RelayedResetBudget`), and whether to disconnect it too; nil to go on.
    private func resetBudgetRefusal(_ node: String, operatorName: String) -> (String, disconnect: Bool)? {
        var budget = relayedResets[node] ?? RelayedResetBudget(nodeAllowance: configuration.session.maxResetsPerWindow)
        let decision = budget.decide(operatorName, now: loop.now)
        relayedResets[node] = budget
        guard decision != .admit else { return nil }
        let seconds = (budget.remaining(now: loop.now) + 999) / 1000
        return ("you reset too many streams to \(node) within \(Limits.abuseWindow); so that the node stays up for everyone, new streams to it are refused for \(seconds) s",
                decision == .disconnect)
    }

    /// Why `operatorName` may not open one more stream to `node` now, or nil: the operator's
    /// own budget on the node, the slots kept for admins, or the node's capacity.
    private func nodeBusy(_ node: String, _ nodeConnection: MuxConnection, operatorName: String, roles: [String]) -> String? {
        let capacity = Int(configuration.session.maxConcurrentStreams)
        switch streamShare.decide(node: node, operatorName: operatorName, isAdmin: authority.policy.isAdmin(roles: roles), nodeCapacity: capacity) {
        case .nodeBusy(let open):
            return TunnelErrorCode.busy(node: node, open: open)
        case .operatorBudget(let open):
            return "you have \(open) streams open to \(node), the most one operator may have on a node; close one first"
        case .admit:
            return nodeConnection.canOpenStream ? nil : TunnelErrorCode.busy(node: node, open: streamShare.openStreams(on: node))
        }
    }
}

extension Gateway {
    /// A refusal as the operator reads it: an ACCEPT carrying a `StreamRefusal`, then a RESET with the code.
    func refuseStream(_ stream: StreamID, on connection: MuxConnection, code: ErrorCode, message: String) {
        do {
            try connection.accept(stream, metadata: TunnelProtocol.encode(StreamRefusal(message: message)))
        } catch {}
        connection.reset(stream, code: code)
    }
}

extension AdminRequest {
    /// The audit record type of this request.
    var auditType: String {
        switch self {
        case .createToken: "token_create"
        case .addUser: "user_add"
        case .revokeUser, .revokeNode: "revoke"
        case .removeNode: "node_remove"
        case .labelNode: "node_label"
        case .recordAuditRead: "audit_read"
        case .listTokens, .listUsers, .listNodes, .showPolicy: "admin_read"
        }
    }

    /// For logs: the request without certificate requests.
    /// The node an admin request is about, so its record joins the node's timeline.
    var nodeName: String? {
        switch self {
        case .createToken(let spec): spec.nodeName
        case .revokeNode(let name), .removeNode(let name), .labelNode(let name, _, _): name
        default: nil
        }
    }

    var summary: String {
        switch self {
        case .createToken(let spec): "create token for \(spec.nodeName ?? spec.namePrefix.map { "\($0)*" } ?? "any name")"
        case .listTokens: "list tokens"
        case .addUser(let name, let roles, _, _): "add user \(name) (\(roles.joined(separator: ",")))"
        case .listUsers: "list users"
        case .revokeUser(let name): "revoke user \(name)"
        case .listNodes: "list nodes"
        case .revokeNode(let name): "revoke node \(name)"
        case .removeNode(let name): "remove node \(name)"
        case .labelNode(let name, let set, let remove):
            "label node \(name) (\((set.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + remove.sorted().map { "\($0)-" }).joined(separator: " ")))"
        case .showPolicy: "show policy"
        case .recordAuditRead(let what): "read audit \(what)"
        }
    }
}
