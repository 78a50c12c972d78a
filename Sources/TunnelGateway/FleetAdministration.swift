import TunnelRuntime
import TunnelState
import TunnelText

// Fleet administration: tokens, operators, node labels and revocations, decided here and
// answered as one `AdminReply` case; the gateway adds the live node view, the audit record and
// the sessions a revocation ends.
extension FleetAuthority {
    /// Carries out one admin request on behalf of `actor` (already checked to be an admin).
    func administer(_ request: AdminRequest, actor: String) -> (AdminReply, [Effect]) {
        do {
            return try perform(request, actor: actor)
        } catch {
            return (.refused(error), [])
        }
    }

    private func perform(_ request: AdminRequest, actor: String) throws(AdminFailure) -> (AdminReply, [Effect]) {
        switch request {
        case .createToken(let spec):
            return (try createToken(spec, actor: actor), [])
        case .listTokens:
            return (
                .tokens(try admin(.unavailable) { () throws(FleetFailure) in try storeCall { try store.tokens() } }), []
            )
        case .addUser(let name, let roles, let lifetime, let csrText):
            return try addUser(name, roles: roles, lifetime: lifetime, csr: csrText, actor: actor)
        case .listUsers:
            return (
                .users(try admin(.unavailable) { () throws(FleetFailure) in try storeCall { try store.users() } }), []
            )
        case .revokeUser(let name):
            var user = try existingUser(name)
            user.revokedAt = now
            user.revokedBy = actor
            try admin(.unavailable) { () throws(FleetFailure) in try storeCall { try store.saveUser(user) } }
            return (
                .done("revoked user \(name): open sessions are closed now and new ones refused"),
                [.disconnectOperator(name, reason: "revoked by \(actor)")]
            )
        case .listNodes:
            return (.nodes([]), []) // The gateway fills in the live view.
        case .revokeNode(let name):
            var node = try existingNode(name)
            node.revokedAt = now
            node.revokedBy = actor
            try admin(.unavailable) { () throws(FleetFailure) in try storeCall { try store.saveNode(node) } }
            return (
                .done("revoked node \(name): its session is closed now and it cannot connect, renew or re-enroll"),
                [.disconnectNode(name, reason: "revoked by \(actor)")]
            )
        case .removeNode(let name):
            try admin { () throws(FleetFailure) in try checkName(name, as: .node) }
            guard
                try admin(
                    .unavailable, { () throws(FleetFailure) in try storeCall { try store.removeNode(named: name) } })
            else { throw Self.noNode(name) }
            return (
                .done("removed node \(name): its certificate no longer connects; it must enroll again with a token"),
                [.disconnectNode(name, reason: "removed by \(actor)")]
            )
        case .labelNode(let name, let set, let remove):
            return (try labelNode(name, set: set, remove: remove), [])
        case .showPolicy:
            return (.policy("policy \(policy.version) from \(policy.source)"), [])
        case .recordAuditRead:
            return (.done("audit read recorded"), [])
        }
    }

    private func createToken(_ spec: TokenSpec, actor: String) throws(AdminFailure) -> AdminReply {
        guard spec.lifetimeSeconds > 0, spec.uses > 0 else {
            throw AdminFailure(.invalid, "--ttl and --uses must be positive")
        }
        guard spec.nodeName == nil || spec.namePrefix == nil else {
            throw AdminFailure(.invalid, "give --node or --name-prefix, not both")
        }
        try admin { () throws(FleetFailure) in
            if let node = spec.nodeName { try checkName(node, as: .node) }
            // A prefix is the start of a node name: its rule without the last-character condition.
            if let prefix = spec.namePrefix, !NameKind.node.accepts(prefix + "0") {
                throw FleetFailure("invalid name prefix \"\(InertText.escape(prefix))\": \(NameKind.node.rule)")
            }
            try checkLabels(spec.labels)
        }
        let token = JoinToken.generate(caPin: caPin)
        try admin(.unavailable) { () throws(FleetFailure) in
            try storeCall {
                try store.insertToken(
                    TokenEntry(
                        id: token.id, secretSHA256: token.secretHash, nodeName: spec.nodeName,
                        namePrefix: spec.namePrefix, labels: spec.labels, createdAt: now,
                        expiresAt: now + spec.lifetimeSeconds, usesAllowed: spec.uses, usesCount: 0, createdBy: actor))
            }
        }
        let enrolls = spec.nodeName ?? spec.namePrefix.map { "names starting with \($0)" } ?? "any name"
        return .token(
            token.description,
            message:
                "token \(token.id) enrolls \(enrolls), \(spec.uses) time(s), until \(isoTime(now + spec.lifetimeSeconds))"
        )
    }

    private func addUser(_ name: String, roles: [String], lifetime: Int64, csr csrText: String, actor: String)
        throws(AdminFailure) -> (AdminReply, [Effect])
    {
        try admin { () throws(FleetFailure) in try checkName(name, as: .user) }
        guard !roles.isEmpty else { throw AdminFailure(.invalid, "give the user a role with --role") }
        let unknown = roles.filter { !policy.roleNames.contains($0) }
        guard unknown.isEmpty else {
            throw AdminFailure(
                .invalid,
                "role \(unknown.joined(separator: ", ")) is not defined in policy \(policy.version) (roles: \(policy.roleNames.joined(separator: ", "))); add it to the policy first"
            )
        }
        guard lifetime > 0 else { throw AdminFailure(.invalid, "--ttl must be positive") }
        let (csr, _) = try admin { () throws(FleetFailure) in try readRequest(csrText) }
        return try admin(.unavailable) { () throws(FleetFailure) -> (AdminReply, [Effect]) in
            let issued = try issueOperator(name: name, publicKey: csr.key, lifetime: lifetime)
            let previous = try storeCall { try store.user(named: name) }
            try storeCall {
                try store.saveUser(
                    UserEntry(
                        name: name, roles: roles, createdAt: previous?.createdAt ?? now,
                        createdBy: previous?.createdBy ?? actor, certificateSerial: issued.serialNumberHex,
                        certificateNotAfter: issued.notAfter, revokedAt: nil, revokedBy: nil))
            }
            let reply = AdminReply.operatorCertificate(
                try pem(issued, operatorCA),
                gatewayCA: String(decoding: try tls { try self.nodeCA.certificate.pem() }, as: UTF8.self),
                message:
                    "\(previous == nil ? "added" : "re-issued") \(name) with role \(roles.joined(separator: ", ")), certificate valid until \(isoTime(issued.notAfter))"
            )
            // A re-issue replaces the old certificate, so sessions made with it end.
            return (
                reply, previous == nil ? [] : [.disconnectOperator(name, reason: "certificate re-issued by \(actor)")]
            )
        }
    }

    private func labelNode(_ name: String, set: [String: String], remove: [String]) throws(AdminFailure) -> AdminReply {
        try admin { () throws(FleetFailure) in
            try checkLabels(set)
            for key in remove { try checkName(key, as: .labelKey) }
        }
        var node = try existingNode(name)
        for key in remove { node.labels[key] = nil }
        node.labels.merge(set) { _, new in new }
        try admin(.unavailable) { () throws(FleetFailure) in try storeCall { try store.saveNode(node) } }
        let now = node.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return .done(
            "node \(name) now has labels \(now.isEmpty ? "(none)" : now); the policy matches them from the next stream")
    }

    private func existingNode(_ name: String) throws(AdminFailure) -> NodeEntry {
        try admin { () throws(FleetFailure) in try checkName(name, as: .node) }
        guard
            let node = try admin(
                .unavailable, { () throws(FleetFailure) in try storeCall { try store.node(named: name) } })
        else { throw Self.noNode(name) }
        return node
    }

    private func existingUser(_ name: String) throws(AdminFailure) -> UserEntry {
        try admin { () throws(FleetFailure) in try checkName(name, as: .user) }
        guard
            let user = try admin(
                .unavailable, { () throws(FleetFailure) in try storeCall { try store.user(named: name) } })
        else { throw AdminFailure(.notFound, "there is no user \(name); `tunnel user ls` lists them") }
        return user
    }

    private static func noNode(_ name: String) -> AdminFailure {
        AdminFailure(.notFound, "there is no node \(name); `tunnel node ls` lists them")
    }

    /// A fleet step of an admin request, its failure refused with `code`.
    private func admin<T>(_ code: AdminFailure.Code = .invalid, _ body: () throws(FleetFailure) -> T)
        throws(AdminFailure)
        -> T
    {
        do { return try body() } catch { throw AdminFailure(code, error.message) }
    }

}
