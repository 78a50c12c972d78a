import Foundation
import Testing

@testable import TunnelAudit

/// Typed events against the spec: every example record in docs/AUDIT.md reads back as its type
/// and encodes to exactly the bytes it was read from, so the writer, the readers and the
/// document name the same fields.
@Suite("Audit events")
struct AuditEventTests {
    /// The record lines of a fenced block of docs/AUDIT.md that follows `marker`.
    static func specLines(after marker: String) throws -> [String] {
        let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../docs/AUDIT.md")
        let text = try String(contentsOf: spec, encoding: .utf8)
        let start = try #require(text.range(of: marker), "docs/AUDIT.md has no \(marker)")
        let block = text[start.upperBound...].components(separatedBy: "```")[1]
        return block.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
    }

    /// The line a record encodes to, without its newline.
    static func encode(_ record: AuditRecord) throws -> String {
        var encoder = RecordEncoder()
        let milliseconds = try #require(Self.milliseconds(record.time))
        try encoder.encode(
            seq: record.seq, milliseconds: milliseconds, type: record.type, prev: Array(record.prev.utf8),
            fields: record.event.fields.merging(record.extra) { $1 })
        return String(decoding: encoder.line.dropLast(), as: UTF8.self)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` as milliseconds since 1970.
    static func milliseconds(_ time: String) -> Int64? {
        let day = Array(time.utf8).withUnsafeBytes { RecordTime.utcDay(text: $0) }
        let clock = time.dropFirst(11).dropLast().split(whereSeparator: { $0 == ":" || $0 == "." }).compactMap {
            Int64($0)
        }
        guard let day, clock.count == 4 else { return nil }
        return day * 86_400_000 + clock[0] * 3_600_000 + clock[1] * 60_000 + clock[2] * 1000 + clock[3]
    }

    @Test("§8's example log reads back byte for byte; its login record is an unknown type")
    func exampleLog() throws {
        let lines = try Self.specLines(after: "of a log written with `checkpointEvery: 2` and closed:")
        #expect(lines.count == 6)
        let records = try lines.map { line throws(AuditError) in try AuditRecord(line: line.utf8) }
        for (line, record) in zip(lines, records) {
            #expect(try Self.encode(record) == line)
        }
        #expect(
            records.map(\.type) == [
                "segment_start", "stream_open", "checkpoint", "stream_close", "login", "checkpoint",
            ])
        guard case .checkpoint(let checkpoint) = records[2].event else {
            Issue.record("not a checkpoint: \(records[2].event)")
            return
        }
        #expect(checkpoint.keyId == "7bee29c5d7901396" && checkpoint.signedSeq == 2 && checkpoint.reason == "count")
        guard case .unknown(let type, let fields) = records[4].event else {
            Issue.record("login read as \(records[4].event)")
            return
        }
        #expect(
            type == "login" && fields["mfa"] == .bool(true) && fields["score"] == .double(0.75)
                && fields["note"] == .null)
        #expect(records[4].extra.isEmpty)
    }

    @Test("§12: every record type of the gateway reads back as its own case, byte for byte")
    func everyGatewayType() throws {
        let lines = try Self.specLines(after: "reads every line back as its type):")
        var types: Set<String> = []
        for line in lines {
            let record = try AuditRecord(line: line.utf8)
            if case .unknown = record.event { Issue.record("\(record.type) did not read as its type: \(line)") }
            #expect(
                record.extra.isEmpty, "\(record.type) has fields its type does not name: \(record.extra.keys.sorted())")
            #expect(try Self.encode(record) == line)
            types.insert(record.type)
        }
        let gatewayTypes: Set<String> = [
            "gateway_start", "gateway_stop", "policy_reload", "node_connect", "node_disconnect", "operator_connect",
            "operator_disconnect", "peer_connect", "peer_disconnect", "connection_refused", "enroll", "reenroll",
            "renew",
            "enroll_refused", "stream_summary", "stream_open", "stream_deny", "stream_close", "kube_request",
        ]
        #expect(types == gatewayTypes.union(AdminRecordType.allCases.map(\.rawValue)))
    }

    @Test("a newer writer's fields are kept beside the event, and re-encode unchanged")
    func extraFields() throws {
        let line =
            #"{"epoch":3,"node":"edge-1","prev":"\#(String(repeating: "0", count: 64))","replica":"gw-b","seq":9,"session":"s-1","source":"127.0.0.1:4000","time":"2026-03-01T10:00:00.000Z","type":"node_connect"}"#
        let record = try AuditRecord(line: line.utf8)
        #expect(
            record.event
                == .nodeConnect(
                    AuditPeer(session: "s-1", source: "127.0.0.1:4000"),
                    NodeConnect(node: "edge-1", nodeSerial: nil, epoch: 3)))
        #expect(record.extra == ["replica": .string("gw-b")])
        #expect(try Self.encode(record) == line)
    }

    @Test("a known type whose fields do not fit reads as unknown, with every field kept")
    func misfitIsUnknown() throws {
        let line =
            #"{"epoch":"three","node":"edge-1","prev":"\#(String(repeating: "0", count: 64))","seq":9,"session":"s-1","source":"x","time":"2026-03-01T10:00:00.000Z","type":"node_connect"}"#
        let record = try AuditRecord(line: line.utf8)
        guard case .unknown(let type, let fields) = record.event else {
            Issue.record("read as \(record.event)")
            return
        }
        #expect(type == "node_connect" && fields["epoch"] == .string("three") && fields.count == 4)
        #expect(try Self.encode(record) == line)
    }

    @Test("a line that is not canonical is not a record")
    func notARecord() {
        #expect(throws: AuditError.self) { try AuditRecord(line: Array(#"{"seq": 1}"#.utf8)) }
    }

    @Test("the writer's events append through the log and read back equal")
    func appendAndRead() throws {
        let fixture = try Fixture()
        let log = try fixture.open()
        let actor = AuditOperator(
            peer: AuditPeer(session: "s-2", source: "[::1]:5000"), name: "alice", subject: nil, serial: "0a",
            roles: ["ops"])
        let target = StreamTarget(
            stream: "s-2/1", node: "edge-1", service: "shell", parameters: ["rows": "24"], policyVersion: "v1")
        let event = AuditEvent.streamOpen(
            StreamRequestParties(actor: actor, target: target), StreamGrant(rule: "ops-shell", recording: "s-2-1.cast"))
        try log.append(event, now: fixture.clock.next(), durable: true)
        let text = try String(contentsOfFile: "\(fixture.directory)/audit-000001.jsonl", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").last)
        let record = try AuditRecord(line: line.utf8)
        #expect(record.event == event, "\(line)")
    }
}
