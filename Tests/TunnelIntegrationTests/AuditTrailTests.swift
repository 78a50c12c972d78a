import Foundation
import Glibc
import Multiplex
import Testing
import TunnelAudit
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issue #5's audit trail through the in-process gateway: what is recorded, that it verifies,
/// and that a log that cannot be written stops new streams.
@Suite("Audit trail", .serialized)
struct AuditTrailTests {
    /// The shared fixture with an audit trail in `directory`, and one node offering echo.
    final class Audited: GatewayFixture {
        private let chosenDirectory: String?
        var directory: String { chosenDirectory ?? Self.defaultDirectory(pki) }

        static func defaultDirectory(_ pki: TestPKI) -> String { "\(pki.fleet.directory)/audit" }

        init(auditDirectory: String? = nil) throws {
            chosenDirectory = auditDirectory
            try super.init { configuration, pki in
                configuration.auditDirectory = auditDirectory ?? Self.defaultDirectory(pki)
                configuration.auditKeyDirectory = "\(pki.fleet.directory)/audit-key"
            }
            try startNode(pki.identity(.node, "node-1"))
            #expect(runner.run(until: { self.online("node-1") }))
        }

        func operatorSession(_ name: String, roles: [String] = ["admin"]) throws -> MuxConnection {
            try #require(try connectOperator(pki.identity(.operator, name, roles: roles))?.get())
        }

        func records() throws -> [[String: AuditValue]] { try auditRecords(in: directory) }
    }

    @Test("streams, denials and admin actions are recorded once each, with their fields, and the log verifies")
    func recordsAndVerifies() throws {
        let audited = try Audited()
        let session = try audited.operatorSession("alice")
        #expect(try audited.echoThrough(session, node: "node-1", bytes: Array(repeating: 7, count: 1000)) == nil)
        let bobSession = try audited.operatorSession("bob", roles: ["nobody"])
        #expect(try audited.echoThrough(bobSession, node: "node-1", bytes: [1])?.contains("nobody") == true)
        _ = audited.gateway.administer(.revokeUser(name: "bob"), actor: "test")
        audited.tearDown()

        let report = AuditVerifier.verify(directory: audited.directory, requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
        let records = try audited.records()
        func of(_ type: String) -> [[String: AuditValue]] { records.filter { $0["type"] == .string(type) } }
        let opens = of("stream_open"), closes = of("stream_close"), denials = of("stream_deny")
        #expect(opens.count == 1 && closes.count == 1 && denials.count == 1)
        let open = try #require(opens.first), close = try #require(closes.first)
        for key in [
            "operator", "operator_subject", "operator_serial", "roles", "node", "service", "source", "session",
            "stream", "policy_version", "rule",
        ] {
            #expect(open[key] != nil, "stream_open lacks \(key)")
        }
        #expect(open["stream"] == close["stream"])
        #expect(close["bytes_to_node"] == .int(1000) && close["bytes_from_node"] == .int(1000))
        #expect(close["outcome"] == "closed")
        #expect(denials.first?["operator"] == "bob" && denials.first?["outcome"] == "denied")
        #expect(of("revoke").first?["actor"] == "test")
        for type in ["gateway_start", "node_connect", "operator_connect", "operator_disconnect", "gateway_stop"] {
            #expect(!of(type).isEmpty, "no \(type) record")
        }
    }

    @Test("a crash leaves streams open: the next start closes each once, as gateway_crash, and the log verifies")
    func crashClosesOpenStreams() throws {
        let directory = NSTemporaryDirectory() + "audit-crash-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = directory + "-key"
        defer { try? FileManager.default.removeItem(atPath: keys) }
        // What a crash leaves: two open records and no close, no clean shutdown.
        do {
            let log = try AuditLog(
                directory: directory, signingKey: AuditSigningKey.loadOrCreate(keyDirectory: keys),
                policy: AuditLogConfiguration(streamRecords: AuditTrail.streamRecords), now: Date())
            for stream in ["s1/1", "s1/3"] {
                try log.append(
                    type: "stream_open",
                    fields: ["stream": .string(stream), "operator": "alice", "node": "node-1", "service": "ssh"],
                    now: Date(), durable: true)
            }
        }
        let trail = try AuditTrail(directory: directory, keyDirectory: keys, logger: .init(label: "test"))
        trail.close()
        #expect(AuditVerifier.verify(directory: directory, requireClosed: true).isValid)
        let text = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }
            .map { try String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8) }.joined()
        for stream in ["s1/1", "s1/3"] {
            let closes = text.split(separator: "\n").filter {
                $0.contains("\"type\":\"stream_close\"") && $0.contains("\"stream\":\"\(stream)\"")
            }
            #expect(closes.count == 1 && closes.first?.contains("gateway_crash") == true, "\(stream): \(closes)")
            #expect(
                closes.first?.contains(#""node":"node-1","operator":"alice""#) == true,
                "the close names whom the open named: \(closes)")
        }
    }

    @Test(
        "while the audit disk is full no stream is admitted, tunnel nodes says so, and streams resume once it has room",
        .enabled(if: geteuid() == 0))
    func fullDiskStopsStreams() throws {
        let mountPoint = NSTemporaryDirectory() + "audit-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=256k") == 0 else {
            Issue.record("cannot mount a tmpfs: \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        let audited = try Audited(auditDirectory: "\(mountPoint)/audit")
        let session = try audited.operatorSession("alice")
        #expect(try audited.echoThrough(session, node: "node-1", bytes: [1, 2, 3]) == nil)
        // Fill the file system to the last byte.
        let filler = "\(mountPoint)/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0, count: 4096)
        while write(fd, block, block.count) > 0 {}
        close(fd)
        // The segment's last page may still take a record or two; the next ones find no room.
        var refused: String?
        for _ in 0..<40 where refused == nil {
            refused = try audited.echoThrough(session, node: "node-1", bytes: [4])
        }
        #expect(refused?.contains("audit log") == true, "\(refused ?? "admitted")")
        #expect(!audited.gateway.warnings.isEmpty)
        unlink(filler)
        #expect(audited.runner.run(until: { audited.gateway.warnings.isEmpty }, timeout: .seconds(5)))
        #expect(try audited.echoThrough(session, node: "node-1", bytes: [5]) == nil)
        audited.tearDown()
        #expect(AuditVerifier.verify(directory: audited.directory, requireClosed: true).isValid)
    }
}
