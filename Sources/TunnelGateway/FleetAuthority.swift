import Foundation
import TunnelGatewayCore
import TunnelPolicy
import TunnelRuntime
import TunnelState
import TunnelTLS
import TunnelText

/// The gateway's identity decisions: who may enroll, renew, connect and open what, and the
/// admin commands that change that. It owns the two CAs and the fleet store, and holds no
/// connections: the `Gateway` carries out what it decides (closing a revoked node's session,
/// say). Loop-confined.
final class FleetAuthority {
    let store: FleetStore
    let nodeCA: CertificateAuthority
    let operatorCA: CertificateAuthority
    /// Node certificates live this long; renewal runs at two thirds of it.
    let nodeCertificateLifetime: Int64
    /// How long after expiry a node certificate still re-enrolls (`reenroll-window`).
    let reenrollWindow: Int64
    private(set) var policy: Policy
    private let clock: () -> Int64

    /// What an admin command asks the gateway to do to live connections.
    enum Effect: Equatable {
        case disconnectNode(String, reason: String)
        case disconnectOperator(String, reason: String)
    }

    init(
        store: FleetStore, nodeCA: CertificateAuthority, operatorCA: CertificateAuthority,
        nodeCertificateLifetime: Int64,
        reenrollWindow: Int64 = 30 * 86_400, policy: Policy,
        clock: @escaping () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) {
        self.store = store
        self.nodeCA = nodeCA
        self.operatorCA = operatorCA
        self.nodeCertificateLifetime = nodeCertificateLifetime
        self.reenrollWindow = reenrollWindow
        self.policy = policy
        self.clock = clock
    }

    var now: Int64 { clock() }

    /// The pin a join token carries: the SHA-256 of the node CA certificate, which signs the
    /// gateway's own certificate.
    var caPin: [UInt8] { nodeCA.certificate.sha256Fingerprint }

    func replacePolicy(_ policy: Policy) {
        self.policy = policy
    }

    // MARK: - Enrollment and renewal

    /// A new node trades a token and a CSR for its first certificate.
    func redeem(_ request: RedeemRequest, from address: String) throws(FleetFailure) -> String {
        let (csr, keyHash) = try readRequest(request.csr)
        let unknown = FleetFailure(
            "the gateway does not know this token (mistyped, or deleted); create a new one with `tunnel token create`")
        // The secret is checked before anything about the token is revealed, then expiry and
        // uses, then the name; the store's atomic redemption below has the last word on races.
        guard let token = try storeCall({ try store.tokens() }).first(where: { $0.id == request.tokenID }),
            constantTimeEquals(token.secretSHA256, Hex.encode(SHA256.hash(Array(request.secret.utf8))))
        else { throw unknown }
        let name = try nodeName(for: request, token: token, csr: csr)
        switch try storeCall({
            try store.redeemToken(
                id: request.tokenID, secretSHA256: token.secretSHA256, keySHA256: keyHash, nodeName: name, now: now)
        }) {
        case .unknown:
            throw unknown
        case .expired(let at):
            throw FleetFailure("this token expired at \(isoTime(at)); create a new one with `tunnel token create`")
        case .usedUp(let uses):
            throw FleetFailure(
                "this token was already used (\(uses) of \(uses) enrollments); create a new one with `tunnel token create`"
            )
        case .alreadyRedeemed(let enrolledName):
            // The same key again: a node that crashed before saving its certificate retries.
            guard enrolledName == name else {
                throw FleetFailure("this key already enrolled as \(enrolledName) with this token")
            }
        case .redeemed:
            break
        }
        // The node's own wishes (`request.labels`) are not labels: a node must not make itself
        // reachable to more privileged roles. Only the token and admins label nodes.
        let labels = token.labels
        let issued = try issueNode(name: name, publicKey: csr.key, keyHash: keyHash)
        var entry = try storeCall({ try store.node(named: name) }) ?? NodeEntry(name: name)
        entry.labels = labels
        entry.keySHA256 = keyHash
        entry.enrolledAt = now
        entry.enrolledWithToken = token.id
        entry.lastAddress = address
        try record(&entry, issued)
        return try pem(issued, nodeCA)
    }

    /// The name a token enrolls: fixed by the token, or asked for (within the token's prefix);
    /// never one another key already holds. The CSR's subject is not a name request.
    private func nodeName(for request: RedeemRequest, token: TokenEntry, csr: ParsedRequest) throws(FleetFailure)
        -> String
    {
        let asked = request.nodeName ?? (token.nodeName == nil ? request.hostName : nil)
        if let asked { try checkName(asked, as: .node) }
        if token.expiresAt <= now {
            throw FleetFailure(
                "this token expired at \(isoTime(token.expiresAt)); create a new one with `tunnel token create`")
        }
        let retry =
            try storeCall({ try store.node(named: asked ?? token.nodeName ?? "") }).map {
                $0.keySHA256 == csr.keyHash && $0.enrolledWithToken == token.id
            } ?? false
        if token.usesCount >= token.usesAllowed, !retry {
            throw FleetFailure(
                "this token was already used (\(token.usesCount) of \(token.usesAllowed) enrollments); create a new one with `tunnel token create`"
            )
        }
        let name: String
        if let fixed = token.nodeName {
            guard asked == nil || asked == fixed else {
                throw FleetFailure(
                    "this token enrolls only the node \(fixed), not \(asked!); drop --node-name or use a token for \(asked!)"
                )
            }
            name = fixed
        } else if let asked {
            if let prefix = token.namePrefix, !asked.hasPrefix(prefix) {
                throw FleetFailure(
                    "this token enrolls only names starting with \(prefix); \(asked) does not (set --node-name \(prefix)…)"
                )
            }
            name = asked
        } else {
            throw FleetFailure("the node sent no name; set --node-name")
        }
        try checkName(name, as: .node)
        if let existing = try storeCall({ try store.node(named: name) }) {
            // A revoked node stays revoked, whatever key or token comes: only `node rm` ends it.
            if existing.revokedAt != nil {
                throw FleetFailure(
                    "node \(name) was revoked; remove it with `tunnel node rm \(name)` before enrolling a replacement under that name"
                )
            }
            if let enrolledKey = existing.keySHA256, enrolledKey != csr.keyHash {
                throw FleetFailure(
                    "node \(name) is already enrolled with another key; to replace that box, `tunnel node rm \(name)` first"
                )
            }
        }
        return name
    }

    /// A node whose certificate expired while it was off presents it (proving its key in the
    /// handshake) and gets a new one, if the gateway still knows it under that key.
    func reenroll(name: String, presented: Certificate, csr text: String) throws(FleetFailure) -> String {
        let entry = try knownNode(name, presented: presented)
        if now - presented.notAfter > reenrollWindow {
            throw FleetFailure(
                "node \(name)'s certificate expired at \(isoTime(presented.notAfter)), longer ago than the re-enrollment window (\(windowText), reenroll-window); enroll it again with a token: tunnel client --token …"
            )
        }
        let (csr, keyHash) = try readRequest(text)
        guard keyHash == entry.keySHA256 else {
            throw FleetFailure("re-enrollment must keep the enrolled key; the request carries another one")
        }
        var updated = entry
        let issued = try issueNode(name: name, publicKey: csr.key, keyHash: keyHash)
        try record(&updated, issued)
        return try pem(issued, nodeCA)
    }

    /// The window as people say it: "30 days", "1 day", "12 h".
    private var windowText: String {
        let days = reenrollWindow / 86_400
        if reenrollWindow % 86_400 == 0 { return days == 1 ? "1 day" : "\(days) days" }
        return "\(reenrollWindow / 3600) h"
    }

    /// A connected node renews its certificate for the same key.
    func renewNode(name: String, presented: Certificate, csr: String) throws(FleetFailure) -> (
        pem: String, notAfter: Int64
    ) {
        var entry = try knownNode(name, presented: presented)
        let (request, keyHash) = try readRequest(csr)
        guard keyHash == entry.keySHA256 else {
            throw FleetFailure("renewal must keep the enrolled key; the request carries another one")
        }
        let issued = try issueNode(name: name, publicKey: request.key, keyHash: keyHash)
        try record(&entry, issued)
        return (try pem(issued, nodeCA), issued.notAfter)
    }

    /// A connected operator renews for the same key and the lifetime they had.
    func renewOperator(name: String, presented: Certificate, csr: String) throws(FleetFailure) -> (
        pem: String, notAfter: Int64
    ) {
        guard var user = try storeCall({ try store.user(named: name) }), user.revokedAt == nil else {
            throw FleetFailure("operator \(name) is unknown or revoked")
        }
        let (request, keyHash) = try readRequest(csr)
        guard let presentedKey = try? presented.publicKey().der(), Hex.encode(SHA256.hash(presentedKey)) == keyHash
        else {
            throw FleetFailure("renewal must keep your key; the request carries another one")
        }
        let issued = try issueOperator(
            name: name, publicKey: request.key,
            lifetime: presented.notAfter - presented.notBefore - backdate(for: presented.notAfter - presented.notBefore)
        )
        user.certificateSerial = issued.serialNumberHex
        user.certificateNotAfter = issued.notAfter
        try storeCall { try store.saveUser(user) }
        return (try pem(issued, operatorCA), issued.notAfter)
    }

    // MARK: - Admission

    /// A node with a valid certificate may connect only if the gateway enrolled that key under
    /// that name and has not revoked it; nil admits.
    func admitNode(_ name: String, certificate: Certificate) -> FleetFailure? {
        do {
            _ = try knownNode(name, presented: certificate)
            return nil
        } catch {
            return error
        }
    }

    /// An operator may connect only with the latest certificate issued to a user not revoked.
    func admitOperator(_ name: String, certificate: Certificate) -> FleetFailure? {
        guard let user = try? store.user(named: name) else {
            return FleetFailure(
                "operator \(name) is not a user of this gateway; an admin adds users with `tunnel user add`")
        }
        if let revoked = user.revokedAt {
            return FleetFailure("operator \(name) was revoked at \(isoTime(revoked))")
        }
        guard user.certificateSerial == certificate.serialNumberHex else {
            return FleetFailure(
                "this certificate of \(name) was replaced by a newer one (renewed or re-issued); use the newest bundle")
        }
        return nil
    }

    func roles(of operatorName: String) -> [String] {
        (try? store.user(named: operatorName))?.roles ?? []
    }

    /// Labels the policy matches on: the ones recorded at enrollment (token labels win).
    func labels(of node: String) -> [String: String] {
        (try? store.node(named: node))?.labels ?? [:]
    }

    /// The Kubernetes groups the policy maps `roles` to on the node (empty: no access).
    func kubernetesGroups(roles: [String], node: String) -> [String] {
        policy.kubernetesGroups(roles: roles, node: node, labels: labels(of: node))
    }

    func decide(roles: [String], node: String, service: String) -> PolicyDecision {
        policy.decide(roles: roles, node: node, labels: labels(of: node), service: service)
    }

    // MARK: - Node bookkeeping

    /// Writes the connects and disconnects of a loop turn in one transaction (`GroupCommit`). A
    /// failed write loses only these bookkeeping fields, never a decision: it is not fatal.
    func recordSightings(_ sightings: [String: NodeSighting]) {
        let entries = sightings.sorted { $0.key < $1.key }.compactMap { name, sighting -> NodeEntry? in
            guard var entry = try? store.node(named: name) else { return nil }
            entry.lastSeen = sighting.at
            if let address = sighting.address { entry.lastAddress = address }
            if let reason = sighting.disconnectReason { entry.lastDisconnectReason = reason }
            return entry
        }
        if !entries.isEmpty { try? store.saveNodes(entries) }
    }

    // MARK: - Helpers

    struct ParsedRequest {
        let key: PublicKey
        let keyHash: String
    }

    /// Parses and checks a PEM CSR; returns it with the SHA-256 of its key.
    func readRequest(_ text: String) throws(FleetFailure) -> (ParsedRequest, String) {
        do {
            let csr = try CertificateSigningRequest.fromPEM(Array(text.utf8))
            try csr.verifySignature()
            let key = try csr.publicKey()
            // Refused before a token is spent on it: the CA would not certify it anyway.
            if let weakness = key.weakness {
                throw FleetFailure("the certificate request's key is refused: \(weakness)")
            }
            let hash = Hex.encode(SHA256.hash(try key.der()))
            return (ParsedRequest(key: key, keyHash: hash), hash)
        } catch let failure as FleetFailure {
            throw failure
        } catch {
            throw FleetFailure("the certificate request is unreadable: \(error)")
        }
    }

    /// The enrolled, unrevoked node `name` whose key is the one in `presented`.
    private func knownNode(_ name: String, presented: Certificate) throws(FleetFailure) -> NodeEntry {
        guard let entry = try storeCall({ try store.node(named: name) }), let enrolledKey = entry.keySHA256 else {
            throw FleetFailure(
                "node \(name) is not enrolled with this gateway (removed, or never enrolled); enroll it with a token: tunnel client --token …"
            )
        }
        if let revoked = entry.revokedAt {
            throw FleetFailure(
                "node \(name) was revoked at \(isoTime(revoked)) by \(entry.revokedBy ?? "an admin")",
                code: TunnelErrorCode.revoked)
        }
        guard let presentedKey = try? presented.publicKey().der(), Hex.encode(SHA256.hash(presentedKey)) == enrolledKey
        else {
            throw FleetFailure(
                "this certificate of node \(name) is not for the key the gateway enrolled; the box was replaced or the certificate copied — enroll it again with a token"
            )
        }
        return entry
    }

    private func issueNode(name: String, publicKey: PublicKey, keyHash: String) throws(FleetFailure) -> Certificate {
        try tls {
            try self.nodeCA.issueClientCertificate(
                for: publicKey, identity: TunnelIdentity(role: .node, name: name),
                validity: CertificateValidity(
                    now: now, lifetime: nodeCertificateLifetime, backdate: backdate(for: nodeCertificateLifetime)))
        }
    }

    func issueOperator(name: String, publicKey: PublicKey, lifetime: Int64) throws(FleetFailure) -> Certificate {
        try tls {
            try self.operatorCA.issueClientCertificate(
                for: publicKey, identity: TunnelIdentity(role: .operator, name: name),
                validity: CertificateValidity(now: now, lifetime: lifetime, backdate: backdate(for: lifetime)))
        }
    }

    /// A little clock skew is tolerated by starting validity early; a tenth of the lifetime at
    /// most, so that two thirds of the validity window stays two thirds of the usable life.
    private func backdate(for lifetime: Int64) -> Int64 {
        min(300, lifetime / 10)
    }

    private func record(_ entry: inout NodeEntry, _ issued: Certificate) throws(FleetFailure) {
        entry.certificateSerial = issued.serialNumberHex
        entry.certificateNotAfter = issued.notAfter
        entry.lastSeen = now
        let saved = entry
        try storeCall { try store.saveNode(saved) }
    }

    func pem(_ certificate: Certificate, _ authority: CertificateAuthority) throws(FleetFailure) -> String {
        String(decoding: try tls { try Certificate.pem(chain: [certificate, authority.certificate]) }, as: UTF8.self)
    }

    /// The door every name from a request passes before it is looked up or stored.
    func checkName(_ name: String, as kind: NameKind) throws(FleetFailure) {
        do { try Names.check(name, as: kind) } catch { throw FleetFailure(error.message) }
    }

    func checkLabels(_ labels: [String: String]) throws(FleetFailure) {
        do { try Names.checkLabels(labels) } catch { throw FleetFailure(error.message) }
    }

    func tls<T>(_ body: () throws -> T) throws(FleetFailure) -> T {
        do { return try body() } catch { throw FleetFailure("certificate work failed: \(error)") }
    }

    func storeCall<T>(_ body: () throws -> T) throws(FleetFailure) -> T {
        do { return try body() } catch { throw FleetFailure("the gateway's state database failed: \(error)") }
    }
}

/// `2026-11-28T08:00:00Z`
func isoTime(_ seconds: Int64) -> String { UTCTime.format(seconds) }
