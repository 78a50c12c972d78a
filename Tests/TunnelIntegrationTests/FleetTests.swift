import Foundation
import Glibc
import Logging
import Multiplex
import Testing
import TunnelClient
import TunnelIO
import TunnelOperator
import TunnelRuntime
import TunnelState
import TunnelTLS

@testable import TunnelGateway

/// Issue #4 end to end over real TLS on loopback: enrollment with join tokens, renewal,
/// re-enrollment, admission, revocation and the policy, all through one in-process gateway.
@Suite("Fleet identity and access", .serialized)
struct FleetTests {
    /// The shared fixture, plus tokens, enrollment and a policy file.
    final class Fleet: GatewayFixture {
        var policyPath: String { Self.policyPath(pki) }

        static func policyPath(_ pki: TestPKI) -> String { "\(pki.fleet.directory)/policy.yaml" }

        init(nodeLifetime: Int64 = 86_400, policy: String? = nil) throws {
            try super.init { configuration, pki in
                configuration.nodeCertificateLifetime = nodeLifetime
                // These tests enroll many nodes from one address at once; the door's own limits
                // are tested in HostileDoorTests.
                configuration.admission.enrollmentsPerSourcePerMinute = 100_000
                configuration.admission.enrollmentConnectionsPerSource = 1_000
                configuration.admission.enrollmentConnections = 1_000
                if let policy {
                    try DurableFile.write(path: Self.policyPath(pki), bytes: Array(policy.utf8), mode: 0o644)
                    configuration.policyPath = Self.policyPath(pki)
                }
            }
        }

        func token(
            node: String? = nil, prefix: String? = nil, uses: Int = 1, ttl: Int64 = 3600, labels: [String: String] = [:]
        ) -> JoinToken {
            let reply = gateway.administer(
                .createToken(
                    TokenSpec(nodeName: node, namePrefix: prefix, lifetimeSeconds: ttl, uses: uses, labels: labels)),
                actor: "test")
            guard case .token(let token, _) = reply else { fatalError("no token: \(reply)") }
            return try! JoinToken.parse(token)
        }

        func files(_ name: String) -> NodeCredentialFiles {
            NodeCredentialFiles(
                certificate: "\(pki.fleet.directory)/\(name).crt", key: "\(pki.fleet.directory)/\(name).key",
                gatewayCA: "\(pki.fleet.directory)/\(name)-ca.crt")
        }

        /// Runs token enrollment for `name` to its end.
        func enroll(_ name: String?, token: JoinToken, files: NodeCredentialFiles) -> Result<TLSIdentity, FleetFailure>?
        {
            var outcome: Result<TLSIdentity, FleetFailure>?
            NodeCredentials.enroll(
                loop: runner.loop, host: "127.0.0.1", port: port, serverName: "localhost", token: token,
                nodeName: name, labels: ["asked": "yes"], files: files, logger: runner.logger
            ) { outcome = $0 }
            runner.run(until: { outcome != nil })
            return outcome
        }
    }

    @Test("a join token becomes a working node; the key never leaves it; the files are durable")
    func enrollmentToStream() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let files = fleet.files("plant-a-1")
        let identity = try #require(
            try fleet.enroll(
                "plant-a-1", token: fleet.token(prefix: "plant-a-", labels: ["site": "plant-a"]), files: files)?.get())
        #expect(try identity.chain[0].tunnelIdentity().name == "plant-a-1")
        var status = stat()
        #expect(stat(files.key, &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(FileManager.default.fileExists(atPath: files.certificate))
        let stored = try #require(try fleet.pki.fleet.store.node(named: "plant-a-1"))
        #expect(stored.labels == ["site": "plant-a"]) // the node asked for "asked": "yes" too; nodes choose no labels
        #expect(stored.keySHA256 == Hex.encode(SHA256.hash(try identity.key.publicKey().der())))

        try fleet.startNode(try TLSIdentity.load(certificatePath: files.certificate, keyPath: files.key), files: files)
        #expect(fleet.runner.run(until: { fleet.online("plant-a-1") }))
        let connection = try #require(try fleet.connectOperator(fleet.pki.identity(.operator, "alice"))?.get())
        #expect(try fleet.echoThrough(connection, node: "plant-a-1") == nil)
    }

    @Test("a used, unknown or wrongly named token is refused with a sentence saying which")
    func tokenRefusals() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let token = fleet.token(node: "node-1")
        #expect(try fleet.enroll(nil, token: token, files: fleet.files("node-1"))?.get() != nil)
        func refusal(_ name: String?, _ token: JoinToken, _ files: String) -> String {
            guard case .failure(let failure)? = fleet.enroll(name, token: token, files: fleet.files(files)) else {
                return "enrolled"
            }
            return failure.message
        }
        #expect(refusal(nil, token, "other").contains("already used"))
        #expect(
            refusal("x", JoinToken(id: "deadbeef", secret: token.secret, caPin: token.caPin), "x").contains(
                "does not know this token"))
        #expect(
            refusal("x", JoinToken(id: token.id, secret: String(repeating: "0", count: 32), caPin: token.caPin), "y")
                .contains("does not know this token"))
        #expect(refusal("node-2", fleet.token(node: "node-3"), "z").contains("enrolls only the node node-3"))
        #expect(refusal("lab-1", fleet.token(prefix: "plant-"), "w").contains("starting with plant-"))
        #expect(refusal("node-1", fleet.token(), "v").contains("already enrolled with another key"))
        // A revoked node cannot come back with a new token, not even with its own key.
        _ = fleet.gateway.administer(.revokeNode(name: "node-1"), actor: "test")
        #expect(refusal(nil, fleet.token(node: "node-1"), "node-1").contains("was revoked"))
        // Expiry: TokenExpiryTests, on a virtual clock.
    }

    @Test("a gateway whose CA does not match the pin gets nothing: no token, no CSR")
    func pinMismatch() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let real = fleet.token(node: "node-1")
        let forged = JoinToken(id: real.id, secret: real.secret, caPin: SHA256.hash(Array("another CA".utf8)))
        guard case .failure(let failure)? = fleet.enroll(nil, token: forged, files: fleet.files("node-1")) else {
            Issue.record("enrolled against a gateway that does not match the pin")
            return
        }
        #expect(failure.isFinal)
        #expect(failure.message.contains("pinned CA hash"))
        // The gateway never saw the secret: the token is unused.
        #expect(try fleet.pki.fleet.store.tokens().first { $0.id == real.id }?.usesCount == 0)
    }

    @Test("50 concurrent redemptions of one single-use token give exactly one certificate")
    func concurrentRedemptions() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let token = fleet.token()
        var outcomes: [Result<TLSIdentity, FleetFailure>] = []
        for index in 0..<50 {
            NodeCredentials.enroll(
                loop: fleet.runner.loop, host: "127.0.0.1", port: fleet.port, serverName: "localhost", token: token,
                nodeName: "racer-\(index)", labels: [:], files: fleet.files("racer-\(index)"),
                logger: fleet.runner.logger
            ) { outcomes.append($0) }
        }
        #expect(fleet.runner.run(until: { outcomes.count == 50 }, timeout: .seconds(60)))
        #expect(outcomes.filter { (try? $0.get()) != nil }.count == 1)
        #expect(try fleet.pki.fleet.store.nodes().count == 1)
    }

    @Test("node-17's certificate cannot take over node-18, renew as node-18, or connect once unenrolled")
    func identityIsTheCertificate() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let node17 = try fleet.pki.identity(.node, "node-17")
        try fleet.startNode(try fleet.pki.identity(.node, "node-18"))
        try fleet.startNode(node17)
        #expect(fleet.runner.run(until: { fleet.online("node-17") && fleet.online("node-18") }))

        // A renewal request naming node-18 on node-17's session yields a node-17 certificate.
        let csr = String(
            decoding: try CertificateSigningRequest(key: node17.key, commonName: "node-18").pem(), as: UTF8.self)
        let renewed = try fleet.gateway.authority.renewNode(name: "node-17", presented: node17.chain[0], csr: csr).pem
        #expect(try Certificate.chainFromPEM(Array(renewed.utf8))[0].tunnelIdentity().name == "node-17")

        // A certificate for a key the gateway never enrolled, and one for a removed node, are refused.
        let copied = try fleet.pki.identity(.node, "node-18", enrolled: false)
        #expect(fleet.runner.run(until: { fleet.online("node-18") }))
        try fleet.startNode(copied)
        #expect(
            !fleet.runner.run(until: { !fleet.online("node-18") }, timeout: .seconds(1)),
            "the copied certificate took over node-18")
        _ = fleet.gateway.administer(.removeNode(name: "node-17"), actor: "test")
        #expect(fleet.runner.run(until: { !fleet.online("node-17") }, timeout: .seconds(5)))
    }

    /// When a renewal falls due is the core's (`EdgeCoreIdentityTests`, on a virtual clock); this
    /// is the real renewal over a live session, once, with a stream open across it.
    @Test("a certificate of a few seconds renews over the session while a stream keeps flowing")
    func renewalKeepsStreamsFlowing() throws {
        let fleet = try Fleet(nodeLifetime: 4)
        defer { fleet.tearDown() }
        let files = fleet.files("node-1")
        let identity = try #require(try fleet.enroll("node-1", token: fleet.token(node: "node-1"), files: files)?.get())
        let client = try fleet.startNode(identity, files: files)
        var renewals = 0
        client.onCertificate = { _ in renewals += 1 }
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        let connection = try #require(try fleet.connectOperator(fleet.pki.identity(.operator, "alice"))?.get())
        let pipe = try LocalPipe(loop: fleet.runner.loop)
        defer { pipe.testSide.close() }
        var ended: OperatorFailure??
        fleet.operators.last!.splice(
            on: connection, node: "node-1", service: "echo", interactive: true, input: pipe.tunnelSide,
            output: pipe.tunnelSide
        ) { ended = .some($0) }
        try pipe.testSide.write(Array("before\n".utf8))
        #expect(fleet.runner.run(until: { pipe.received.count == 7 }))
        // Renewal falls due two thirds into the four-second certificate.
        #expect(fleet.runner.run(until: { renewals >= 1 || ended != nil }, timeout: .seconds(10)))
        try pipe.testSide.write(Array("after\n".utf8))
        #expect(fleet.runner.run(until: { pipe.received.count == 13 || ended != nil }))
        #expect(ended == nil, "the stream ended: \(String(describing: ended))")
        #expect(String(decoding: pipe.received, as: UTF8.self) == "before\nafter\n")
        #expect(client.isConnected)
        let onDisk = try Certificate.chainFromPEM(DurableFile.read(path: files.certificate))[0]
        #expect(onDisk.notAfter > identity.chain[0].notAfter)
    }

    @Test("a node whose certificate expired while it was off re-enrolls by itself; a revoked one cannot")
    func expiredNodeComesBack() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        let now = Int64(time(nil))
        let expired = try fleet.pki.identity(.node, "node-1", notBefore: now - 7200, lifetime: 3600)
        let client = try fleet.startNode(expired)
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        #expect(client.certificate.notAfter > now)

        let revoked = try fleet.pki.identity(.node, "node-2", notBefore: now - 7200, lifetime: 3600)
        _ = fleet.gateway.administer(.revokeNode(name: "node-2"), actor: "test")
        // The refused re-enrollment reaches the node as `revoked`, not as an internal error.
        let log = CapturedLog()
        try fleet.startNode(revoked, logger: Logger(label: "node-2") { _ in log })
        #expect(
            fleet.runner.run(until: {
                log.reasons.contains { $0.hasPrefix("revoked: re-enrollment failed: node node-2 was revoked at ") }
            }), "\(log.reasons)")
        #expect(!log.reasons.contains { $0.hasPrefix("internal-error") }, "\(log.reasons)")
        #expect(!fleet.online("node-2"))
    }

    /// The `reason` of every message a node client logs.
    final class CapturedLog: LogHandler, @unchecked Sendable {
        // @unchecked Sendable: `captured` is only touched under `lock`.
        private let lock = NSLock()
        private var captured: [String] = []
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        var reasons: [String] { lock.withLock { captured } }
        func log(event: LogEvent) {
            guard let reason = event.metadata?["reason"] else { return }
            lock.withLock { captured.append("\(reason)") }
        }
    }

    @Test("revocation closes live sessions at once, refuses new handshakes, and survives a restart")
    func revocation() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        try fleet.startNode(try fleet.pki.identity(.node, "node-1"))
        let bob = try fleet.pki.identity(.operator, "bob")
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        let bobSession = try #require(try fleet.connectOperator(bob)?.get())

        let started = Date()
        _ = fleet.gateway.administer(.revokeNode(name: "node-1"), actor: "test")
        _ = fleet.gateway.administer(.revokeUser(name: "bob"), actor: "test")
        #expect(fleet.runner.run(until: { !fleet.online("node-1") && !bobSession.isEstablished }, timeout: .seconds(5)))
        #expect(Date().timeIntervalSince(started) < 5)
        guard case .failure(let refused)? = fleet.connectOperator(bob) else {
            Issue.record("revoked operator connected")
            return
        }
        #expect(refused.message.contains("revoked"))

        try fleet.restartGateway()
        #expect(!fleet.runner.run(until: { fleet.online("node-1") }, timeout: .seconds(2)))
        guard case .failure? = fleet.connectOperator(bob) else {
            Issue.record("revoked operator connected after restart")
            return
        }
    }

    @Test("when a node's session ends under a stream, the operator is told the node disconnected")
    func nodeDisconnectedUnderAStream() throws {
        let fleet = try Fleet()
        defer { fleet.tearDown() }
        try fleet.startNode(try fleet.pki.identity(.node, "node-1"))
        #expect(fleet.runner.run(until: { fleet.online("node-1") }))
        let connection = try #require(try fleet.connectOperator(fleet.pki.identity(.operator, "alice"))?.get())
        let pipe = try LocalPipe(loop: fleet.runner.loop)
        defer { pipe.testSide.close() }
        var ended: OperatorFailure??
        fleet.operators.last!.splice(
            on: connection, node: "node-1", service: "echo", interactive: true, input: pipe.tunnelSide,
            output: pipe.tunnelSide
        ) { ended = .some($0) }
        try pipe.testSide.write(Array("hello".utf8))
        #expect(fleet.runner.run(until: { pipe.received.count == 5 }))
        // The gateway ends the node's session itself (as on a lost link), not the node.
        _ = fleet.gateway.administer(.revokeNode(name: "node-1"), actor: "test")
        #expect(fleet.runner.run(until: { ended != nil }))
        #expect(ended??.message == "node node-1 disconnected", "\(String(describing: ended))")
    }

    static let policy = """
        roles:
          admin:
            admin: true
            allow:
              - services: ["*"]
                nodes: ["*"]
          vendor-acme:
            allow:
              - services: [logs]
                labels: {site: plant-a}
          plant-b-tech:
            allow:
              - services: [echo, logs]
                nodes: ["b-*"]
        """

    @Test(
        "every cell of roles × services × nodes allows or denies as the policy says; a change applies to the next stream"
    )
    func policyMatrix() throws {
        let fleet = try Fleet(policy: Self.policy)
        defer { fleet.tearDown() }
        try fleet.startNode(try fleet.pki.identity(.node, "a-1"))
        let b1 = try fleet.pki.identity(.node, "b-1", enrolled: false)
        try fleet.pki.fleet.enroll(b1, labels: ["site": "plant-b"])
        try fleet.startNode(b1)
        #expect(fleet.runner.run(until: { fleet.online("a-1") && fleet.online("b-1") }))
        let expected: [(role: String, node: String, service: String, allowed: Bool)] = [
            ("admin", "a-1", "echo", true), ("admin", "a-1", "logs", true), ("admin", "b-1", "echo", true),
            ("admin", "b-1", "logs", true),
            ("vendor-acme", "a-1", "echo", false), ("vendor-acme", "a-1", "logs", true),
            ("vendor-acme", "b-1", "echo", false), ("vendor-acme", "b-1", "logs", false),
            ("plant-b-tech", "a-1", "echo", false), ("plant-b-tech", "a-1", "logs", false),
            ("plant-b-tech", "b-1", "echo", true), ("plant-b-tech", "b-1", "logs", true),
        ]
        var sessions: [String: MuxConnection] = [:]
        for role in ["admin", "vendor-acme", "plant-b-tech"] {
            sessions[role] = try #require(
                try fleet.connectOperator(fleet.pki.identity(.operator, "user-\(role)", roles: [role]))?.get())
        }
        for cell in expected {
            let outcome = try fleet.echoThrough(sessions[cell.role]!, node: cell.node, service: cell.service)
            #expect((outcome == nil) == cell.allowed, "\(cell): \(outcome ?? "allowed")")
            if !cell.allowed {
                #expect(
                    outcome?.contains("vendor-acme") == true || outcome?.contains("plant-b-tech") == true,
                    "\(cell): \(outcome ?? "")")
            }
        }
        // The vendor loses logs: the next stream on the same session is denied.
        try DurableFile.write(
            path: fleet.policyPath,
            bytes: Array(Self.policy.replacingOccurrences(of: "services: [logs]", with: "services: [echo]").utf8),
            mode: 0o644)
        fleet.gateway.reloadPolicy()
        #expect(try fleet.echoThrough(sessions["vendor-acme"]!, node: "a-1", service: "logs") != nil)
        #expect(try fleet.echoThrough(sessions["vendor-acme"]!, node: "a-1", service: "echo") == nil)
        // An invalid policy keeps the one in force.
        try DurableFile.write(path: fleet.policyPath, bytes: Array("roles: {oops: 1}".utf8), mode: 0o644)
        fleet.gateway.reloadPolicy()
        #expect(try fleet.echoThrough(sessions["vendor-acme"]!, node: "a-1", service: "echo") == nil)
    }
}
