import Foundation
import Testing
import TunnelTLS

@testable import TunnelAudit

@Suite("Writer")
struct WriterTests {
    @Test func appendCloseReopenContinuesTheChain() throws {
        let fixture = try Fixture()
        var log = try fixture.open()
        #expect(log.recovery == nil)
        try fixture.appendEvents(log, count: 10)
        #expect(log.lastSeq == 11) // segment_start + 10
        try log.close(now: fixture.clock.next())
        #expect(throws: AuditError.self) { try log.append(type: "late", fields: [:], now: Date(), durable: false) }

        var report = fixture.verify(requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
        #expect(report.records == 12 && report.closedCleanly && report.unsignedTail == 0)

        log = try fixture.open()
        let recovery = try #require(log.recovery)
        #expect(
            recovery
                == RecoveryInfo(
                    segment: "audit-000001.jsonl", lostBytes: 0, lastGoodSeq: 12, cleanShutdown: true, recordSeq: 13))
        #expect(log.unclosedStreams().isEmpty)
        let seq = try log.append(type: "request", fields: ["user": "bob"], now: fixture.clock.next(), durable: true)
        #expect(seq == 15) // after the recovery record and its checkpoint
        try log.close(now: fixture.clock.next())

        report = fixture.verify(requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
        #expect(report.records == 16 && report.recoveries == 1 && report.checkpoints == 3)
        let last = try fixture.lines("audit-000001.jsonl")[12]
        #expect(last.contains("\"clean_shutdown\":true") && last.contains("\"type\":\"recovery\""))
    }

    @Test func encodesRecordsCanonically() throws {
        let fixture = try Fixture()
        let log = try fixture.open()
        let fields: [String: AuditValue] = [
            "s": .string("q\"b\\s\n\t\u{1}\u{7f}é/😀"), "i": .int(-42), "big": .int(.max), "d": .double(1.5),
            "tiny": .double(1e-7), "t": true, "f": false, "none": .null, "list": .strings(["b", "a"]),
            "empty": .strings([]),
            "obj": .object(["z": "1", "a": "\"", "é": "x", "B": "", "a#": "r", "a\"b": "q"]), "A-Z.0_9": "ok",
        ]
        try log.append(
            type: "demo.v1", fields: fields, now: Date(timeIntervalSince1970: 1_772_359_200.25), durable: false)
        let lines = try fixture.lines("audit-000001.jsonl")
        let expectedPrev = Hex.encode(SHA256.hash(Array(lines[0].utf8)))
        let expected =
            #"{"A-Z.0_9":"ok","big":9223372036854775807,"d":1.5,"empty":[],"f":false,"i":-42,"#
            + #""list":["b","a"],"none":null,"obj":{"B":"","a":"\"","a\"b":"q","a#":"r","z":"1","é":"x"},"#
            + #""prev":"\#(expectedPrev)","s":"q\"b\\s\n\t\u0001"# + "\u{7f}é/😀" + #"","seq":2,"t":true,"#
            + #""time":"2026-03-01T10:00:00.250Z","tiny":1e-07,"type":"demo.v1"}"#
        #expect(lines[1] == expected)
        try log.close(now: fixture.clock.next())
        #expect(fixture.verify().isValid)
    }

    @Test func formatsTimesInUTCWithMilliseconds() throws {
        let fixture = try Fixture()
        let log = try fixture.open()
        let cases: [(TimeInterval, String)] = [
            (0, "1970-01-01T00:00:00.000Z"), (951_782_400.999, "2000-02-29T00:00:00.999Z"),
            (-1, "1969-12-31T23:59:59.000Z"), (253_402_300_799.5, "9999-12-31T23:59:59.500Z"),
        ]
        for (seconds, text) in cases {
            try log.append(type: "t", fields: [:], now: Date(timeIntervalSince1970: seconds), durable: false)
            #expect(try fixture.lines(log.currentSegment).last!.contains("\"time\":\"\(text)\""))
        }
        #expect(throws: AuditError.self) {
            try log.append(type: "t", fields: [:], now: Date(timeIntervalSince1970: 253_402_300_800), durable: false)
        }
    }

    @Test func refusesWhatTheFormatCannotCarryAndStaysHealthy() throws {
        let fixture = try Fixture()
        let log = try fixture.open()
        let now = fixture.clock.next()
        for (type, fields) in [
            ("checkpoint", [:]), ("recovery", [:]), ("bad type", [:]), ("", [:]),
            ("event", ["seq": .int(1)]), ("event", ["time": "x"]), ("event", ["bad name": "x"]),
            ("event", ["x": .double(.nan)]), ("event", ["x": .double(.infinity)]),
            ("event", ["x": .string(String(repeating: "a", count: 1 << 20))]),
        ] as [(String, [String: AuditValue])] {
            let error = #expect(throws: AuditError.self) {
                try log.append(type: type, fields: fields, now: now, durable: false)
            }
            #expect(error?.code == .invalidArgument)
        }
        #expect(log.isHealthy && log.lastSeq == 1)
        try log.append(type: "event", fields: ["x": 1], now: now, durable: true)
        try log.close(now: now)
        #expect(fixture.verify(requireClosed: true).isValid)
    }

    @Test func rotatesBySizeAndKeepsTheChainAcrossFiles() throws {
        let fixture = try Fixture()
        let log = try fixture.open(AuditLogConfiguration(maxSegmentBytes: 4096, checkpointEvery: 1000))
        try fixture.appendEvents(log, count: 200)
        try log.close(now: fixture.clock.next())

        let segments = fixture.segments
        #expect(segments.count >= 5)
        for (index, name) in segments.enumerated() {
            let lines = try fixture.lines(name)
            #expect(fileSize(fixture.path(name)) < 4096 + 2 * 512)
            #expect(lines[0].contains("\"type\":\"segment_start\""))
            #expect(lines[0].contains("\"previous_file\":\"\(index == 0 ? "" : segments[index - 1])\""))
            if index + 1 < segments.count {
                #expect(lines.last!.contains("\"reason\":\"rotate\""))
            }
        }
        let report = fixture.verify(requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
        #expect(report.files == segments && report.firstSeq == 1 && report.lastSeq == log.lastSeq)
    }

    @Test func rotatesAtUTCMidnight() throws {
        let fixture = try Fixture()
        fixture.clock = TestClock(Date(timeIntervalSince1970: 1_772_409_599)) // 2026-03-01T23:59:59Z
        let log = try fixture.open()
        try fixture.appendEvents(log, count: 5)
        try log.append(type: "request", fields: [:], now: fixture.clock.next(1), durable: false)
        try fixture.appendEvents(log, count: 5)
        try log.close(now: fixture.clock.next())

        #expect(fixture.segments == ["audit-000001.jsonl", "audit-000002.jsonl"])
        // The rotation checkpoint closing the first segment is written when the new day's first record arrives.
        #expect(try fixture.lines("audit-000001.jsonl").dropLast().allSatisfy { $0.contains("\"time\":\"2026-03-01T") })
        #expect(try fixture.lines("audit-000002.jsonl").allSatisfy { $0.contains("\"time\":\"2026-03-02T") })
        #expect(fixture.verify(requireClosed: true).isValid)
    }

    @Test func signsCheckpointsByCountAndByInterval() throws {
        let fixture = try Fixture()
        let log = try fixture.open(AuditLogConfiguration(checkpointEvery: 5, checkpointInterval: 60))
        try fixture.appendEvents(log, count: 3)
        try log.tick(now: fixture.clock.next(30))
        #expect(log.lastSeq == 4)
        try log.tick(now: fixture.clock.next(31))
        #expect(log.lastSeq == 5)
        let tickCheckpoint = try fixture.lines(log.currentSegment).last!
        #expect(tickCheckpoint.contains("\"reason\":\"interval\"") && tickCheckpoint.contains("\"signed_seq\":4"))

        try fixture.appendEvents(log, count: 6)
        let lines = try fixture.lines(log.currentSegment)
        #expect(lines[10].contains("\"reason\":\"count\"") && lines[10].contains("\"signed_seq\":10"))
        let report = fixture.verify()
        #expect(report.isValid && report.checkpoints == 2 && report.unsignedTail == 1)

        try log.tick(now: fixture.clock.next(120))
        #expect(log.lastSeq == 13)
        try log.tick(now: fixture.clock.next(120))
        #expect(log.lastSeq == 13, "no checkpoint without new records")
        #expect(fixture.verify().unsignedTail == 0)
    }

    @Test func reportsALiveTailAsUnsignedButValid() throws {
        let fixture = try Fixture()
        let log = try fixture.open(AuditLogConfiguration(checkpointEvery: 4))
        try fixture.appendEvents(log, count: 6)
        try log.sync()
        let report = fixture.verify()
        #expect(report.isValid, "\(report.summary)")
        #expect(report.unsignedTail == 3 && report.lastCheckpointSeq == 5 && !report.closedCleanly)
        #expect(report.summary.contains("not yet covered by a signature"))
        let strict = fixture.verify(requireClosed: true)
        #expect(strict.problem?.kind == .notClosed && strict.problem?.seq == 8)
        withExtendedLifetime(log) {}
    }
}

@Suite("Keys")
struct KeyTests {
    @Test func createsKeyFilesOnceWithTightModes() throws {
        let temporary = try TemporaryDirectory()
        let keys = temporary.sub("keys")
        let key = try AuditSigningKey.loadOrCreate(keyDirectory: keys)
        var status = stat()
        #expect(stat("\(keys)/audit-key.pem", &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(stat("\(keys)/audit-key.pub.pem", &status) == 0 && status.st_mode & 0o777 == 0o644)
        #expect(stat(keys, &status) == 0 && status.st_mode & 0o777 == 0o700)
        #expect(key.keyID.count == 16)

        let again = try AuditSigningKey.loadOrCreate(keyDirectory: keys)
        #expect(again.keyID == key.keyID && again.publicKey.rawBytes == key.publicKey.rawBytes)
        let published = try AuditPublicKey(pemFile: "\(keys)/audit-key.pub.pem")
        #expect(published.keyID == key.keyID)
        #expect(Hex.encode(SHA256.hash(published.rawBytes)).hasPrefix(published.keyID))
    }

    @Test func refusesMismatchedOrOrphanedKeyFiles() throws {
        let temporary = try TemporaryDirectory()
        let keys = temporary.sub("keys")
        _ = try AuditSigningKey.loadOrCreate(keyDirectory: keys)
        try FileSystem.writeDurably(
            "\(keys)/audit-key.pub.pem", bytes: AuditSigningKey.generate().publicKey.pem(), mode: 0o644)
        #expect(throws: AuditError.self) { try AuditSigningKey.loadOrCreate(keyDirectory: keys) }
        unlink("\(keys)/audit-key.pem")
        let error = #expect(throws: AuditError.self) { try AuditSigningKey.loadOrCreate(keyDirectory: keys) }
        #expect(error?.code == .key && error?.message.contains("lost") == true)
        #expect(throws: AuditError.self) { try AuditPublicKey(pem: Array("not a key".utf8)) }
    }

    @Test func verifierFindsThePublicKeyBesideTheLog() throws {
        let fixture = try Fixture()
        try fixture.closedLog(records: 5)
        #expect(AuditVerifier.verify(directory: fixture.directory).problem?.kind == .unreadable)
        try FileSystem.writeDurably(
            "\(fixture.directory)/audit-key.pub.pem", bytes: fixture.key.publicKey.pem(), mode: 0o644)
        let report = AuditVerifier.verify(directory: fixture.directory)
        #expect(report.isValid && report.keyID == fixture.key.keyID)
    }
}
