import Foundation
import Logging
import Testing
import TunnelAudit
import TunnelRuntime
import TunnelText

@testable import TunnelCommands

/// Issue #9, item 5: human output shows what others sent as inert text, one record per line.
@Suite struct InertOutputTests {
    static let hostile =
        "x\n7  2026-01-01T00:00:00Z  stream_open  operator=admin \u{1b}]0;pwned\u{07}\u{1b}[2J\u{9b}31m\u{202E}"

    static func assertInert(_ text: String, lines: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            text.split(separator: "\n", omittingEmptySubsequences: false).count == lines, "\(text)",
            sourceLocation: sourceLocation)
        #expect(
            !text.unicodeScalars.contains {
                $0 == "\u{1b}" || $0 == "\u{07}" || $0 == "\u{9b}" || $0 == "\u{202E}" || $0 == "\r"
            },
            "\(text)", sourceLocation: sourceLocation)
    }

    @Test("tunnel nodes: a node's self-announced version and services cannot add rows or reach the terminal")
    func nodesTable() {
        let node = NodeStatus(
            name: "node-1", online: true, labels: ["site": "a"], services: ["ssh", Self.hostile],
            remoteAddress: "127.0.0.1:1",
            connectedSince: nil, lastKeepaliveSecondsAgo: nil, version: Self.hostile,
            previousSessionEnded: Self.hostile,
            certificateNotAfter: nil, lastSeen: nil, revokedAt: nil)
        let table = NodesCommand.table([node])
        Self.assertInert(String(table.dropLast()), lines: 2)
        #expect(table.contains("\\x1b]0;pwned\\x07"))
    }

    @Test("audit ls --events: a field with a newline stays in its record's line")
    func eventLines() throws {
        let entry = AuditEntry(
            file: "audit-1.jsonl",
            record: try AuditRecord(fields: [
                "seq": .int(6), "prev": .string(String(repeating: "0", count: 64)),
                "time": .string("2026-01-01T00:00:00Z"),
                "type": .string("enroll"), "token": .string(Self.hostile),
                "parameters": .object(["grep": Self.hostile]),
            ]))
        Self.assertInert(AuditListCommand.eventLine(entry), lines: 1)
    }

    @Test("tables, errors and log lines: one helper escapes them all")
    func tablesErrorsAndLogs() {
        Self.assertInert(String(tableText([["NODE", "REASON"], ["node-1", Self.hostile]]).dropLast()), lines: 2)
        let outcome = TunnelMain.outcome(
            of: CommandFailure.failed("the gateway closed the connection: \(Self.hostile)", .streamEnded))
        Self.assertInert(outcome.message, lines: 2)
        let logged = InertLogHandler.inert(
            .dictionary(["reason": .string(Self.hostile), "list": .array([.stringConvertible(Self.hostile)])]))
        Self.assertInert(logged.description, lines: 1)
    }

    @Test("audit show: JSON stays the same JSON, but C1 and bidi controls are written as escapes")
    func showJSON() throws {
        let json = String(decoding: try JSONEncoder.sorted.encode(["reason": Self.hostile]), as: UTF8.self)
        let shown = InertText.escapeJSON(json)
        Self.assertInert(shown, lines: 1)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(shown.utf8))
        #expect(decoded["reason"] == Self.hostile)
    }
}
