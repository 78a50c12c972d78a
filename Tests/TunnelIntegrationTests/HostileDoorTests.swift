import Foundation
import Glibc
import Logging
import Multiplex
import Testing
import TunnelAudit
import TunnelIO
import TunnelOperator
import TunnelRuntime
import TunnelTLS

@testable import TunnelClient
@testable import TunnelGateway

/// Issue #9, the door: anonymous peers cannot flood the audit log or the descriptor table or
/// hold enrollment sessions, finite-field key exchange is refused, and one operator cannot take
/// a node's every stream. Each test here failed before the fix.
@Suite("Hostile peers at the door", .serialized)
struct HostileDoorTests {
    final class Door: GatewayFixture {
        var auditDirectory: String { "\(pki.fleet.directory)/audit" }

        init(policy: String? = nil, _ adjust: (inout GatewayConfiguration) -> Void = { _ in }) throws {
            try super.init { configuration, pki in
                configuration.auditDirectory = "\(pki.fleet.directory)/audit"
                configuration.auditKeyDirectory = "\(pki.fleet.directory)/audit-key"
                if let policy {
                    configuration.policyPath = "\(pki.fleet.directory)/policy.yaml"
                    try DurableFile.write(path: configuration.policyPath!, bytes: Array(policy.utf8), mode: 0o644)
                }
                adjust(&configuration)
            }
        }

        /// A plain TCP connection to the gateway.
        func dial() -> StreamConnection? {
            var outcome: Result<StreamConnection, FleetFailure>?
            let dialer = GatewayDialer(loop: runner.loop, host: "127.0.0.1", port: port, timeoutMilliseconds: 5_000) {
                outcome = $0
            }
            runner.run(until: { outcome != nil })
            _ = dialer
            return try? outcome?.get()
        }

        /// One enrollment request on a connection of its own, as a node sends it.
        func enroll(_ request: EnrollmentRequest) -> Result<CertificateReply, FleetFailure>? {
            var outcome: Result<CertificateReply, FleetFailure>?
            EnrollmentCall(
                loop: runner.loop, host: "127.0.0.1", port: port, serverName: "localhost",
                verification: .pinnedCA(sha256: pki.nodeCA.certificate.sha256Fingerprint), identity: nil,
                certificateTime: .systemClock, request: request, logger: runner.logger
            ) { result, _ in outcome = result }
            runner.run(until: { outcome != nil })
            return outcome
        }

        /// An operator's client and connection.
        func operatorSession(_ name: String, roles: [String]) throws -> (OperatorClient, MuxConnection) {
            let connection = try #require(try connectOperator(pki.identity(.operator, name, roles: roles))?.get())
            return (operators.last!, connection)
        }

        /// Opens an echo stream and leaves it open; the refusal sentence if it was refused.
        func holdStream(_ session: (OperatorClient, MuxConnection), node: String) throws -> String? {
            let pipe = try LocalPipe(loop: runner.loop)
            held.append(pipe)
            var failure: OperatorFailure??
            session.0.splice(
                on: session.1, node: node, service: "echo", interactive: true, input: pipe.tunnelSide,
                output: pipe.tunnelSide
            ) { failure = .some($0) }
            try pipe.testSide.write([7])
            runner.run(until: { failure != nil || pipe.received == [7] })
            return failure.flatMap { $0?.message }
        }

        func nodeList(_ session: (OperatorClient, MuxConnection)) -> Result<NodeList, OperatorFailure>? {
            var outcome: Result<NodeList, OperatorFailure>?
            session.0.listNodes(on: session.1) { outcome = $0 }
            runner.run(until: { outcome != nil })
            return outcome
        }

        private var held: [LocalPipe] = []

        override func tearDown() {
            for pipe in held { pipe.testSide.close() }
            super.tearDown()
        }

        func records() throws -> [[String: AuditValue]] { try auditRecords(in: auditDirectory) }
    }

    static func redeem(tokenID: String) -> EnrollmentRequest {
        .redeem(
            RedeemRequest(
                tokenID: tokenID, secret: String(repeating: "0", count: 32), nodeName: "x", hostName: nil, labels: [:],
                csr: ""))
    }

    @Test("a refused-redeem flood leaves one summary per source, and none of the peer's text, in the audit log")
    func refusedRedeemFlood() throws {
        let door = try Door { $0.admission.enrollmentsPerSourcePerMinute = 60 }
        let forged =
            "0123abcd\n2026-12-04T00:00:00Z enroll outcome=ok node=forged" + String(repeating: "A", count: 3000)
        var replies: [String] = []
        for index in 0..<30 {
            let request = Self.redeem(tokenID: index % 2 == 0 ? forged : String(format: "%08x", index))
            switch door.enroll(request) {
            case .failure(let failure)?: replies.append(failure.message)
            default: Issue.record("redeem \(index) was not refused")
            }
        }
        #expect(replies.contains { $0.contains("token id") }, "\(replies)")
        #expect(replies.contains { $0.contains("too many enrollment attempts") })
        door.tearDown()

        let records = try door.records()
        #expect(!records.contains { $0["type"] == .string("enroll") }, "no record per refusal")
        let summaries = records.filter { $0["type"] == .string("enroll_refused") }
        #expect(summaries.count == 1)
        guard case .object(let counts)? = summaries.first?["counts"] else {
            Issue.record("no counts")
            return
        }
        #expect(counts.values.compactMap(Int.init).reduce(0, +) == 30)
        #expect(counts["malformed"] != nil && counts["token-refused"] != nil && counts["enrollment-rate"] != nil)
        #expect(summaries.first?["source"] == .string("127.0.0.1"))
        let text = try FileManager.default.contentsOfDirectory(atPath: door.auditDirectory).filter {
            $0.hasSuffix(".jsonl")
        }
        .map { try String(contentsOfFile: "\(door.auditDirectory)/\($0)", encoding: .utf8) }.joined()
        #expect(!text.contains("forged") && !text.contains("AAAA"))
    }

    @Test("an enrollment session that only answers pings is closed at its deadline")
    func idleEnrollmentSessionIsClosed() throws {
        let door = try Door { $0.admission.enrollmentDeadline = .milliseconds(1500) }
        defer { door.tearDown() }
        let idle = IdleEnrollment()
        let socket = try #require(door.dial())
        let context = try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: nil,
                peerVerification: .pinnedCA(sha256: door.pki.nodeCA.certificate.sha256Fingerprint),
                applicationProtocols: [TunnelProtocol.enrollALPN]))
        var configuration = SessionConfiguration()
        configuration.keepaliveInterval = .milliseconds(200)
        let connection = try MuxConnection.makeClient(
            on: socket, context: context, serverName: "localhost", configuration: configuration,
            delegate: idle, logger: door.runner.logger)
        connection.start()
        #expect(door.runner.run(until: { idle.ready }))
        #expect(door.runner.run(until: { idle.closed != nil }, timeout: .seconds(10)))
        #expect(
            idle.closed?.reason.contains("enrollment connection closes") == true, "\(String(describing: idle.closed))")
    }

    @Test("a ClientHello offering only finite-field groups is refused; X25519 and P-256 are served")
    func finiteFieldGroupsRefused() throws {
        let door = try Door()
        defer { door.tearDown() }
        func handshake(groups: String) throws -> String {
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            client.arguments = [
                "s_client", "-connect", "127.0.0.1:\(door.port)", "-tls1_3", "-groups", groups,
                "-alpn", TunnelProtocol.enrollALPN, "-brief",
            ]
            client.standardInput = FileHandle.nullDevice
            let output = Pipe()
            client.standardOutput = output
            client.standardError = output
            try client.run()
            #expect(door.runner.run(until: { !client.isRunning }, timeout: .seconds(20)))
            if client.isRunning { client.terminate() }
            return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        let ffdhe = try handshake(groups: "ffdhe8192")
        #expect(!ffdhe.contains("CONNECTION ESTABLISHED") && ffdhe.contains("handshake failure"), "\(ffdhe)")
        let ffdheFirst = try handshake(groups: "ffdhe2048:ffdhe8192")
        #expect(!ffdheFirst.contains("CONNECTION ESTABLISHED"), "\(ffdheFirst)")
        for group in ["X25519", "P-256"] {
            let served = try handshake(groups: group)
            #expect(served.contains("CONNECTION ESTABLISHED"), "\(group): \(served)")
        }
    }

    @Test("one operator filling a node gets 'busy' while another operator and an admin still get streams")
    func fairShareOfANode() throws {
        let door = try Door(policy: FleetTests.policy) {
            $0.admission.streamsPerOperatorPerNode = 3
            $0.admission.adminReservedStreamsPerNode = 2
            // The node's capacity as the gateway counts it: small, so the test stays cheap.
            $0.session.maxConcurrentStreams = 6
        }
        defer { door.tearDown() }
        try door.startNode(door.pki.identity(.node, "b-17"))
        #expect(door.runner.run(until: { door.online("b-17") }))
        let mallory = try door.operatorSession("mallory", roles: ["plant-b-tech"])
        let bob = try door.operatorSession("bob", roles: ["plant-b-tech"])
        let root = try door.operatorSession("root", roles: ["admin"])
        for _ in 0..<3 { #expect(try door.holdStream(mallory, node: "b-17") == nil) }
        let overBudget = try door.holdStream(mallory, node: "b-17")
        #expect(overBudget?.contains("3 streams open to b-17") == true, "\(overBudget ?? "opened")")
        #expect(try door.holdStream(bob, node: "b-17") == nil)
        let busy = try door.holdStream(bob, node: "b-17")
        #expect(busy == "b-17 is busy (4 streams open); retry when some have closed", "\(busy ?? "opened")")
        #expect(try door.holdStream(root, node: "b-17") == nil, "the admins' reserve")
        #expect(try door.holdStream(root, node: "b-17") == nil)
        #expect(try door.holdStream(root, node: "b-17")?.contains("busy (6 streams open)") == true)
        guard case .success(let list)? = door.nodeList(root) else {
            Issue.record("no node list")
            return
        }
        #expect(list.nodes.contains { $0.name == "b-17" && $0.online })
    }

    @Test("an operator's stream records are bounded: over the rate, opens are refused and denials only counted")
    func streamRecordsAreBounded() throws {
        let door = try Door { $0.admission.streamRecordsPerOperatorPerMinute = 60 }
        try door.startNode(door.pki.identity(.node, "node-1"))
        #expect(door.runner.run(until: { door.online("node-1") }))
        let nobody = try door.operatorSession("nobody", roles: ["nobody"])
        for _ in 0..<15 { #expect(try door.echoThrough(nobody.1, node: "node-1") != nil) }
        let admin = try door.operatorSession("root", roles: ["admin"])
        var refusals: [String] = []
        for _ in 0..<12 { if let refusal = try door.echoThrough(admin.1, node: "node-1") { refusals.append(refusal) } }
        #expect(refusals.count == 2 && refusals.allSatisfy { $0.contains("streams in a minute") }, "\(refusals)")
        door.tearDown()
        let records = try door.records()
        func of(_ type: String, _ name: String) -> [[String: AuditValue]] {
            records.filter { $0["type"] == .string(type) && $0["operator"] == .string(name) }
        }
        #expect(of("stream_deny", "nobody").count == 10)
        #expect(of("stream_open", "root").count == 10)
        #expect(of("stream_summary", "nobody").first?["counts"] == .object(["denied": "5"]))
        #expect(of("stream_summary", "root").first?["counts"] == .object(["rate_limited": "2"]))
    }
}

/// An enrollment client that completes the handshake and then only answers pings.
final class IdleEnrollment: MuxConnectionDelegate {
    var ready = false
    var closed: Failure?
    func connectionEstablished(_ connection: MuxConnection) -> Failure? { nil }
    func connectionReady(_ connection: MuxConnection) { ready = true }
    func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        connection.reset(stream, code: .refusedStream)
    }
    func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        if failure.code != .noError { closed = failure }
    }
    func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        if closed == nil { closed = failure }
    }
}

/// Every record of the audit log in `directory`, in order.
func auditRecords(in directory: String) throws -> [[String: AuditValue]] {
    let decoder = JSONDecoder()
    return try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }.sorted()
        .flatMap { name in
            try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8).split(separator: "\n").map {
                try decoder.decode([String: AuditValue].self, from: Data($0.utf8))
            }
        }
}
