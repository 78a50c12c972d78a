import Foundation
import Testing

@testable import TunnelAudit

/// Each test changes a closed log of several segments the way an intruder might and checks
/// that verification fails at the first bad record, naming file, line and seq.
@Suite("Tampering")
struct TamperTests {
    let fixture: Fixture
    /// The second segment: line 1 is its segment_start, lines 2–10 ordinary records, line 11 a checkpoint.
    let middle = "audit-000002.jsonl"

    init() throws {
        fixture = try Fixture()
        try fixture.closedLog()
        #expect(fixture.segments.count >= 5)
        #expect(try fixture.lines(middle)[10].contains("\"type\":\"checkpoint\""))
    }

    private func expectProblem(
        _ kind: AuditProblem.Kind, file: String, line: Int?, seq: UInt64?, mentioning words: String? = nil,
        requireClosed: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let report = fixture.verify(requireClosed: requireClosed)
        guard let problem = report.problem else {
            Issue.record("the tampered log verified: \(report.summary)", sourceLocation: sourceLocation)
            return
        }
        #expect(problem.kind == kind, "\(problem.message)", sourceLocation: sourceLocation)
        #expect(
            problem.file == file && problem.line == line && problem.seq == seq, "\(problem.message)",
            sourceLocation: sourceLocation)
        if let words {
            #expect(problem.message.contains(words), "\(problem.message)", sourceLocation: sourceLocation)
        }
    }

    @Test func untouchedLogPasses() {
        let report = fixture.verify(requireClosed: true)
        #expect(report.isValid, "\(report.summary)")
        #expect(report.files == fixture.segments && report.closedCleanly && report.unsignedTail == 0)
        #expect(report.checkpoints >= 12 && report.lastCheckpointSeq == report.lastSeq)
    }

    @Test func changedField() throws {
        var lines = try fixture.lines(middle)
        let seq = fixture.seq(of: lines[4])
        lines[4] = lines[4].replacingOccurrences(of: "alice", with: "mallory")
        try fixture.write(middle, lines: lines)
        expectProblem(.prevMismatch, file: middle, line: 6, seq: seq + 1, mentioning: "does not match record \(seq)")
    }

    @Test func changedFieldWithRecomputedHashesNeedsTheKey() throws {
        var lines = try fixture.lines(middle)
        lines[4] = lines[4].replacingOccurrences(of: "alice", with: "mallory")
        try fixture.write(middle, lines: lines)
        try fixture.forgeChain(
            from: middle, line: 6, signer: AuditSigningKey.generate(), claimedKeyID: fixture.key.keyID)
        expectProblem(
            .badSignature, file: middle, line: 11, seq: fixture.seq(of: lines[10]),
            mentioning: "signature does not verify")
    }

    @Test func deletedRecord() throws {
        var lines = try fixture.lines(middle)
        let seq = fixture.seq(of: lines.remove(at: 4))
        try fixture.write(middle, lines: lines)
        expectProblem(.seqBreak, file: middle, line: 5, seq: seq + 1, mentioning: "record \(seq) is missing")
    }

    @Test func insertedRecord() throws {
        var lines = try fixture.lines(middle)
        let seq = fixture.seq(of: lines[4])
        lines.insert(lines[4], at: 5)
        try fixture.write(middle, lines: lines)
        expectProblem(.seqBreak, file: middle, line: 6, seq: seq, mentioning: "inserted")
    }

    @Test func insertedRecordWithRenumberedChainNeedsTheKey() throws {
        var lines = try fixture.lines(middle)
        lines.insert(lines[4].replacingOccurrences(of: "alice", with: "eve"), at: 5)
        try fixture.write(middle, lines: lines)
        try fixture.forgeChain(
            from: middle, line: 6, signer: AuditSigningKey.generate(), claimedKeyID: fixture.key.keyID)
        let checkpoint = try fixture.lines(middle)[11]
        expectProblem(.badSignature, file: middle, line: 12, seq: fixture.seq(of: checkpoint))
    }

    @Test func swappedRecords() throws {
        var lines = try fixture.lines(middle)
        let seq = fixture.seq(of: lines[4])
        lines.swapAt(4, 5)
        try fixture.write(middle, lines: lines)
        expectProblem(.seqBreak, file: middle, line: 5, seq: seq + 1)
    }

    @Test func truncatedEndOfAClosedLog() throws {
        let newest = fixture.segments.last!
        var lines = try fixture.lines(newest)
        #expect(lines.count >= 3)
        lines.removeLast(2)
        try fixture.write(newest, lines: lines)
        // Without knowing the log was closed, this looks like a running writer's unsigned tail...
        let lenient = fixture.verify()
        #expect(lenient.isValid && lenient.unsignedTail > 0 && !lenient.closedCleanly)
        // ...which is exactly what the auditor of a closed log must refuse.
        expectProblem(
            .notClosed, file: newest, line: lines.count, seq: fixture.seq(of: lines.last!), requireClosed: true)
    }

    @Test func newestFileCutMidLine() throws {
        let newest = fixture.segments.last!
        let lines = try fixture.lines(newest)
        let size = fileSize(fixture.path(newest))
        #expect(truncate(fixture.path(newest), off_t(size - 20)) == 0)
        expectProblem(.tornLine, file: newest, line: lines.count, seq: nil, mentioning: "middle of a record")
    }

    @Test func middleFileCutMidLine() throws {
        let size = fileSize(fixture.path(middle))
        #expect(truncate(fixture.path(middle), off_t(size - 50)) == 0)
        expectProblem(.tornLine, file: middle, line: try fixture.lines(middle).count + 1, seq: nil)
    }

    @Test func deletedMiddleSegment() throws {
        let seqAfter = fixture.seq(of: try fixture.lines(middle).last!) + 1
        #expect(unlink(fixture.path("audit-000003.jsonl")) == 0)
        expectProblem(
            .missingFile, file: "audit-000003.jsonl", line: nil, seq: seqAfter, mentioning: "whole segment was removed")
    }

    @Test func deletedMiddleSegmentWithRenumberedFiles() throws {
        let segments = fixture.segments
        #expect(unlink(fixture.path(segments[2])) == 0)
        for index in 3..<segments.count {
            #expect(rename(fixture.path(segments[index]), fixture.path(segments[index - 1])) == 0)
        }
        let seq = fixture.seq(of: try fixture.lines(segments[2])[0])
        expectProblem(.segmentLink, file: segments[2], line: 1, seq: seq, mentioning: "a segment was removed")
    }

    @Test func swappedSegmentFiles() throws {
        let segments = fixture.segments
        #expect(rename(fixture.path(segments[1]), fixture.path("tmp")) == 0)
        #expect(rename(fixture.path(segments[2]), fixture.path(segments[1])) == 0)
        #expect(rename(fixture.path("tmp"), fixture.path(segments[2])) == 0)
        let seq = fixture.seq(of: try fixture.lines(segments[1])[0])
        expectProblem(.segmentLink, file: segments[1], line: 1, seq: seq)
    }

    @Test func deletedFirstSegment() throws {
        #expect(unlink(fixture.path("audit-000001.jsonl")) == 0)
        expectProblem(.missingFile, file: "audit-000001.jsonl", line: nil, seq: nil, mentioning: "first segment")
    }

    @Test func deletedLastSegment() throws {
        let segments = fixture.segments
        #expect(unlink(fixture.path(segments.last!)) == 0)
        let previous = segments[segments.count - 2]
        let lines = try fixture.lines(previous)
        expectProblem(
            .missingNextSegment, file: previous, line: lines.count, seq: fixture.seq(of: lines.last!),
            mentioning: "\(segments.last!) does not exist")
        // Relabelling the rotation checkpoint as a clean close breaks its signature.
        try fixture.write(
            previous,
            lines: lines.dropLast() + [
                lines.last!.replacingOccurrences(of: "\"reason\":\"rotate\"", with: "\"reason\":\"close\"")
            ])
        expectProblem(
            .badSignature, file: previous, line: lines.count, seq: fixture.seq(of: lines.last!), requireClosed: true)
    }

    @Test func alteredSignature() throws {
        var lines = try fixture.lines("audit-000001.jsonl")
        let index = try #require(lines.firstIndex { $0.contains("\"type\":\"checkpoint\"") })
        let match = try #require(lines[index].firstMatch(of: /"signature":"(.)/))
        let replacement = match.1 == "A" ? "B" : "A"
        lines[index].replaceSubrange(match.1.startIndex..<match.1.endIndex, with: replacement)
        try fixture.write("audit-000001.jsonl", lines: lines)
        expectProblem(.badSignature, file: "audit-000001.jsonl", line: index + 1, seq: fixture.seq(of: lines[index]))
    }

    @Test func reSignedWithAnotherKey() throws {
        let first = try fixture.lines("audit-000001.jsonl")
        let index = try #require(first.firstIndex { $0.contains("\"type\":\"checkpoint\"") })
        let intruder = try AuditSigningKey.generate()
        try fixture.forgeChain(from: "audit-000001.jsonl", line: 1, signer: intruder)
        expectProblem(
            .wrongKey, file: "audit-000001.jsonl", line: index + 1, seq: fixture.seq(of: first[index]),
            mentioning: intruder.keyID)
        // The forged log is consistent in itself: it verifies with the intruder's key only.
        #expect(
            AuditVerifier.verify(directory: fixture.directory, publicKey: intruder.publicKey, requireClosed: true)
                .isValid)

        try fixture.forgeChain(from: "audit-000001.jsonl", line: 1, signer: intruder, claimedKeyID: fixture.key.keyID)
        expectProblem(.badSignature, file: "audit-000001.jsonl", line: index + 1, seq: fixture.seq(of: first[index]))
    }

    @Test func malformedLine() throws {
        var lines = try fixture.lines(middle)
        lines[4] = lines[4].replacingOccurrences(of: "{\"n\"", with: "{ \"n\"")
        try fixture.write(middle, lines: lines)
        expectProblem(.malformed, file: middle, line: 5, seq: nil, mentioning: "not a valid record")
    }

    @Test func duplicateKeyIsRejected() throws {
        var lines = try fixture.lines(middle)
        lines[4] = lines[4].replacingOccurrences(of: "\"path\":", with: "\"n\":1,\"path\":")
        try fixture.write(middle, lines: lines)
        expectProblem(.malformed, file: middle, line: 5, seq: nil, mentioning: "duplicate or out of order")
    }

    @Test func evidenceBundles() throws {
        let segments = fixture.segments.map(fixture.path)
        let firstOfSecond = fixture.seq(of: try fixture.lines(middle)[0])
        let part = AuditVerifier.verify(files: [segments[2], segments[1]], publicKey: fixture.key.publicKey)
        #expect(part.isValid, "\(part.summary)")
        #expect(part.firstSeq == firstOfSecond && part.files == [middle, "audit-000003.jsonl"])
        #expect(
            AuditVerifier.verify(
                files: Array(segments.dropFirst()), publicKey: fixture.key.publicKey, requireClosed: true
            ).isValid)

        let gap = AuditVerifier.verify(files: [segments[1], segments[3]], publicKey: fixture.key.publicKey)
        #expect(gap.problem?.kind == .missingFile && gap.problem?.file == "audit-000003.jsonl")
        let renamed = AuditVerifier.verify(
            files: [fixture.temporary.path + "/x.jsonl"], publicKey: fixture.key.publicKey)
        #expect(renamed.problem?.kind == .unreadable)
    }
}
