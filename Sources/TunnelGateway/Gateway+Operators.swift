import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelRuntime
import TunnelTLS
import TunnelText

// Operators' requests at the gateway: node lists, renewals, administration, and the streams they
// open to nodes — checked against the policy, recorded in the audit log, relayed.
extension Gateway {
    func handleOperatorRequest(
        from name: String, connection: MuxConnection, stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        // The roles now (not at connect): a changed role applies to the next request.
        let roles = authority.roles(of: name)
        switch TunnelProtocol.decode(OperatorRequest.self, from: metadata) {
        case .listNodes(let after, let limit, nil):
            let (page, next) = nodePage(visibleToRoles: roles, after: after, limit: limit)
            connection.reply(
                NodeList(
                    nodes: page, warnings: after == nil ? warnings : [], gatewayTime: authority.now, next: next),
                on: stream)
        case .listNodes(let after, let limit, let pages?):
            NodeListReply.start(
                self, connection: connection, stream: stream, roles: roles, after: after, limit: limit, pages: pages)
        case .connect(let node, let service, let parameters):
            let open = { [unowned self] in
                guard !connection.isEnding else { return }
                connect(
                    operatorName: name, roles: roles, connection: connection, stream: stream, node: node,
                    service: service,
                    parameters: parameters, interactive: interactive)
            }
            // A node on a replica whose link is being dialed: decided once the link is up or failed.
            if awaitPeerLink(node: node, retry: open) { return }
            open()
        case .renew(let csr):
            renewOperator(name, roles: roles, csr: csr, connection: connection, stream: stream)
        case .admin(let request):
            administerForOperator(name, roles: roles, request: request, connection: connection, stream: stream)
        case .auditRead(let request):
            serveAuditRead(request, operatorName: name, roles: roles, connection: connection, stream: stream)
        case nil:
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }

    /// An operator's certificate renewal: a new certificate for the same name, or the reason why not.
    private func renewOperator(
        _ name: String, roles: [String], csr: String, connection: MuxConnection, stream: StreamID
    ) {
        guard let presented = connection.peerCertificate else {
            return connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
        do {
            let (pem, notAfter) = try authority.renewOperator(name: name, presented: presented, csr: csr)
            core.renewed(ObjectIdentifier(connection), notAfter: notAfter)
            audit?.record(
                .operatorRenew(
                    auditOperator(name, connection, roles: roles), Renewal(outcome: .ok, notAfter: notAfter)))
            connection.reply(CertificateReply(gatewayTime: authority.now, certificate: pem), on: stream)
        } catch {
            connection.reply(CertificateReply(gatewayTime: authority.now, error: error.message), on: stream)
        }
    }

    /// An admin request over the tunnel: carried out for an operator with an admin role, refused
    /// and recorded for anyone else.
    private func administerForOperator(
        _ name: String, roles: [String], request: AdminRequest, connection: MuxConnection, stream: StreamID
    ) {
        let asker = auditOperator(name, connection, roles: roles)
        guard authority.policy.isAdmin(roles: roles) else {
            logger.notice("admin request denied", metadata: ["operator.name": "\(name)"])
            audit?.record(
                .admin(
                    .admin, by: asker, AdminAction(action: request.summary, outcome: "denied", reason: "no admin role"))
            )
            connection.reply(
                AdminReply.refused(
                    AdminFailure(
                        .notAllowed,
                        "you (\(name), roles \(roles.joined(separator: ", "))) have no admin role in policy \(authority.policy.version)"
                    )), on: stream)
            return
        }
        connection.reply(administer(request, actor: "operator \(name)", by: asker), on: stream)
    }

    /// Carries out an admin request from an admin operator or the local admin socket.
    /// `by` is the operator who asked, nil for the local admin socket.
    public func administer(_ request: AdminRequest, actor: String, by asker: AuditOperator? = nil) -> AdminReply {
        var (reply, effects) = authority.administer(request, actor: actor)
        var token: String?
        if case .token(let issued, _) = reply { token = try? JoinToken.parse(issued).id }
        let action = AdminAction(
            actor: actor, action: request.summary, outcome: reply.failure == nil ? "ok" : "refused",
            reason: reply.failure?.message, token: token, node: request.nodeName)
        let recorded = audit?.record(.admin(request.auditType, by: asker, action), durable: true)
        if recorded == false, case .recordAuditRead = request {
            return .refused(
                AdminFailure(
                    .unavailable,
                    "the audit log cannot be written, so reading it cannot be recorded: \(audit?.failure ?? "")"))
        }
        if case .nodes = reply, case .listNodes(let after, let limit) = request {
            let (page, next) = nodePage(visibleToRoles: nil, after: after, limit: limit)
            reply = .nodes(page, next: next)
        }
        logger.notice(
            "admin request",
            metadata: [
                "actor": "\(actor)", "request": "\(request.summary)", "error": "\(reply.failure?.message ?? "none")",
            ])
        for effect in effects {
            carryOut(effect)
            // A removed node leaves no trace in this run's view either.
            if case .removeNode(let name) = request { core.forgetNode(name) }
            // The other replicas of a cluster end their sessions of the same node or operator.
            switch effect {
            case .disconnectNode(let name, let reason): cluster?.publish(.nodeCut, subject: name, detail: reason)
            case .disconnectOperator(let name, let reason):
                cluster?.publish(.operatorCut, subject: name, detail: reason)
            }
        }
        return reply
    }

    /// Ends the live sessions an admin command (here or at another replica) cut off.
    func carryOut(_ effect: FleetAuthority.Effect) {
        switch effect {
        case .disconnectNode(let name, let reason):
            liveSession(of: name)?.abort(Failure(TunnelErrorCode.revoked, "node \(name) \(reason)"))
        case .disconnectOperator(let name, let reason):
            for id in core.connections(ofOperator: name) {
                connections[id]?.connection.abort(Failure(TunnelErrorCode.revoked, "operator \(name) \(reason)"))
            }
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
    var auditType: AdminRecordType {
        switch self {
        case .createToken: .tokenCreate
        case .addUser: .userAdd
        case .revokeUser, .revokeNode: .revoke
        case .removeNode: .nodeRemove
        case .labelNode: .nodeLabel
        case .recordAuditRead: .auditRead
        case .listTokens, .listUsers, .listNodes, .showPolicy: .adminRead
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
        case .createToken(let spec):
            "create token for \(spec.nodeName ?? spec.namePrefix.map { "\($0)*" } ?? "any name")"
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
