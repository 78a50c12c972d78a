import Foundation
import Testing

@testable import TunnelAudit

@Suite("Recovery")
struct RecoveryTests {
    /// Writes `count` records and drops the log without closing it, as a crash would.
    private func crash(_ fixture: Fixture, records count: Int, policy: AuditLogConfiguration = AuditLogConfiguration())
        throws
    {
        let log = try fixture.open(policy)
        try fixture.appendEvents(log, count: count, durable: true)
    }

    private func appendRaw(_ bytes: [UInt8], to path: String) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
    }

    @Test func cutsATornLastLineAndRecordsTheLoss() throws {
        let fixture = try Fixture()
        try crash(fixture, records: 5)
        let path = fixture.path("audit-000001.jsonl")
        let goodSize = fileSize(path)
        let torn = Array(#"{"n":5,"path":"/api/v1/no"#.utf8)
        try appendRaw(torn, to: path)

        let log = try fixture.open()
        let recovery = try #require(log.recovery)
        #expect(
            recovery
                == RecoveryInfo(
                    segment: "audit-000001.jsonl", lostBytes: Int64(torn.count), lastGoodSeq: 6, cleanShutdown: false,
                    recordSeq: 7))
        let lines = try fixture.lines("audit-000001.jsonl")
        #expect(lines.count == 8 && fileSize(path) == goodSize + lines[6].utf8.count + 1 + lines[7].utf8.count + 1)
        #expect(lines[6].contains(#""clean_shutdown":false,"last_good_seq":6,"lost_bytes":\#(torn.count)"#))
        try log.close(now: fixture.clock.next())
        let report = fixture.verify(requireClosed: true)
        #expect(report.isValid && report.recoveries == 1, "\(report.summary)")
    }

    @Test func cutsAZeroFilledTail() throws {
        let fixture = try Fixture()
        try crash(fixture, records: 3)
        try appendRaw([UInt8](repeating: 0, count: 4096), to: fixture.path("audit-000001.jsonl"))
        let log = try fixture.open()
        #expect(log.recovery?.lostBytes == 4096 && log.recovery?.lastGoodSeq == 4)
        try log.close(now: fixture.clock.next())
        #expect(fixture.verify(requireClosed: true).isValid)
    }

    @Test func cutsAWholeLineThatBreaksTheChainAtTheEnd() throws {
        let fixture = try Fixture()
        try crash(fixture, records: 3)
        var lines = try fixture.lines("audit-000001.jsonl")
        let last = lines.removeLast()
        try fixture.write(
            "audit-000001.jsonl", lines: lines + [last.replacingOccurrences(of: "\"seq\":4", with: "\"seq\":9")])
        let log = try fixture.open()
        #expect(log.recovery?.lostBytes == Int64(last.utf8.count + 1) && log.recovery?.lastGoodSeq == 3)
        try log.close(now: fixture.clock.next())
        #expect(fixture.verify(requireClosed: true).isValid)
    }

    @Test func crashWithoutCloseIsAnUncleanShutdown() throws {
        let fixture = try Fixture()
        try crash(fixture, records: 3)
        let log = try fixture.open()
        #expect(
            log.recovery
                == RecoveryInfo(
                    segment: "audit-000001.jsonl", lostBytes: 0, lastGoodSeq: 4, cleanShutdown: false, recordSeq: 5))
        // The recovered records and the recovery record are signed at once (reason recovery).
        #expect(fixture.verify().unsignedTail == 0)
        #expect(try fixture.lines("audit-000001.jsonl").last?.contains(#""reason":"recovery""#) == true)
        try log.close(now: fixture.clock.next())
        let report = fixture.verify(requireClosed: true)
        #expect(report.isValid && report.checkpoints == 2)
    }

    /// Issue #9: a gateway killed every few seconds, well inside the checkpoint interval, still
    /// gets every earlier lifetime's records signed; only the current one's are unsigned.
    @Test func crashLoopLeavesOnlyTheLastLifetimeUnsigned() throws {
        let fixture = try Fixture()
        for _ in 0..<7 { try crash(fixture, records: 10) }
        let report = fixture.verify()
        #expect(report.isValid, "\(report.summary)")
        #expect(report.recoveries == 6 && report.unsignedTail == 10, "\(report.summary)")
    }

    @Test func refusesDamageACrashCannotExplain() throws {
        let fixture = try Fixture()
        try crash(fixture, records: 5)
        var lines = try fixture.lines("audit-000001.jsonl")
        lines[2] = lines[2].replacingOccurrences(of: "alice", with: "mallory")
        try fixture.write("audit-000001.jsonl", lines: lines)
        let before = try Data(contentsOf: URL(fileURLWithPath: fixture.path("audit-000001.jsonl")))

        let error = #expect(throws: AuditError.self) { try fixture.open() }
        #expect(error?.code == .damaged && error?.message.contains("line 4") == true, "\(String(describing: error))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.path("audit-000001.jsonl"))) == before)
    }

    @Test func refusesToContinueAnotherKeysLog() throws {
        let fixture = try Fixture()
        try fixture.closedLog(records: 5)
        let error = #expect(throws: AuditError.self) {
            try AuditLog(
                directory: fixture.directory, signingKey: AuditSigningKey.generate(), now: fixture.clock.next())
        }
        #expect(error?.code == .key)
    }

    @Test func finishesARotationInterruptedBeforeTheNewFile() throws {
        let fixture = try Fixture()
        try fixture.closedLog(records: 60)
        let segments = fixture.segments
        #expect(segments.count >= 3)
        // As if the writer died right after the rotation checkpoint that ends the segment before.
        #expect(unlink(fixture.path(segments.last!)) == 0)
        let log = try fixture.open()
        #expect(log.recovery?.lostBytes == 0 && log.recovery?.cleanShutdown == false)
        #expect(log.currentSegment == segments.last!)
        try log.close(now: fixture.clock.next())
        #expect(fixture.segments == segments)
        let report = fixture.verify(requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
    }

    @Test func restartsANewSegmentThatHasNoCompleteRecord() throws {
        let fixture = try Fixture()
        try fixture.closedLog(records: 60)
        let segments = fixture.segments
        let newest = fixture.path(segments.last!)
        // As if the writer died while writing the new segment's segment_start.
        #expect(truncate(newest, 40) == 0)
        let log = try fixture.open()
        #expect(log.recovery?.lostBytes == 40 && log.recovery?.segment == segments.last!)
        #expect(log.currentSegment == segments.last!)
        try log.close(now: fixture.clock.next())
        #expect(fixture.segments == segments)
        let report = fixture.verify(requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
    }

    @Test func reportsStreamsLeftOpenSinceTheLastCleanClose() throws {
        let fixture = try Fixture()
        let policy = AuditLogConfiguration(maxSegmentBytes: 4096, checkpointEvery: 10)
        func open(_ log: AuditLog, _ stream: AuditValue, session: String) throws {
            try log.append(
                type: "stream_open", fields: ["stream": stream, "session": .string(session), "service": "ssh"],
                now: fixture.clock.next(), durable: true)
        }
        func close(_ log: AuditLog, _ stream: AuditValue, reason: String = "fin") throws {
            try log.append(
                type: "stream_close", fields: ["stream": stream, "reason": .string(reason)], now: fixture.clock.next(),
                durable: false)
        }

        var log = try fixture.open(policy)
        try open(log, "s0", session: "before-clean-close")
        try log.close(now: fixture.clock.next())

        log = try fixture.open(policy)
        #expect(log.unclosedStreams().isEmpty)
        try open(log, "s1", session: "a")
        try open(log, "s2", session: "b")
        try open(log, .int(3), session: "c")
        try close(log, "s2")
        try fixture.appendEvents(log, count: 60) // rotates: the opens are in an older segment
        try open(log, "s4", session: "d")
        try close(log, "s4")
        log = try fixture.open(policy) // the previous writer crashed

        #expect(fixture.segments.count >= 3)
        let open = log.unclosedStreams()
        #expect(Set(open.keys) == ["a", "c"])
        #expect(open["a"]?["stream"] == "s1" && open["a"]?["service"] == "ssh" && open["a"]?["type"] == "stream_open")
        #expect(open["c"]?["stream"] == .int(3))
        for fields in open.values {
            try close(log, fields["stream"]!, reason: "gateway_crash")
        }
        try log.close(now: fixture.clock.next())

        log = try fixture.open(policy)
        #expect(log.recovery?.cleanShutdown == true && log.unclosedStreams().isEmpty)
        try log.close(now: fixture.clock.next())
        #expect(fixture.verify(requireClosed: true).isValid)
    }
}
