import ArgumentParser
import Foundation
import Testing
import TunnelAudit
import TunnelTLS

@testable import TunnelCommands

/// Issue #13: a cluster's replicas each keep their own chain and key; the auditor commands take
/// several logs (directories or one export holding them), verify each with its own key and
/// merge their records by time.
@Suite struct AuditClusterTests {
    /// Writes a closed log for `replica` under `dir/replica`, with its public key beside it, of
    /// stream records at the given seconds after `start`; returns the key.
    private func writeLog(_ dir: String, replica: String, at seconds: [Double], start: Date) throws -> AuditSigningKey {
        let key = try AuditSigningKey.loadOrCreate(keyDirectory: "\(dir)/\(replica)-key")
        let log = try AuditLog(directory: "\(dir)/\(replica)", signingKey: key, now: start)
        for (index, offset) in seconds.enumerated() {
            let actor = AuditOperator(
                peer: AuditPeer(session: replica, source: "127.0.0.1:1"), name: "alice", subject: nil, serial: nil,
                roles: ["ops"])
            let target = StreamTarget(
                stream: "\(replica)/\(index)", node: "node-1", service: "ssh", parameters: nil, policyVersion: "v1")
            try log.append(
                type: "stream_open",
                fields: AuditEvent.streamOpen(
                    StreamRequestParties(actor: actor, target: target), StreamGrant(rule: "r")
                ).fields.merging([
                    "replica": .string(replica)
                ]) { $1 },
                now: start.addingTimeInterval(offset), durable: true)
        }
        try log.close(now: start.addingTimeInterval((seconds.max() ?? 0) + 1))
        try DurableFile.write(
            path: "\(dir)/\(replica)/\(AuditSigningKey.publicKeyFileName)", bytes: key.publicKey.pem(), mode: 0o644)
        return key
    }

    @Test("records of several logs merge by time, each log keeping its own order even where its clock stepped back")
    func mergesByTime() throws {
        try withTemporaryDirectory { dir in
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            _ = try writeLog(dir, replica: "r1", at: [1, 4, 3], start: start)
            _ = try writeLog(dir, replica: "r2", at: [2, 5], start: start)
            let streams = try AuditLogs.merged(["\(dir)/r1", "\(dir)/r2"]).filter { $0.type == "stream_open" }
                .compactMap { $0.string("stream") }
            // r1's 3 s record follows its 4 s one, where the writer put it; r2's 5 s comes after both.
            #expect(streams == ["r1/0", "r2/0", "r1/1", "r1/2", "r2/1"])

            let table = AuditListCommand.table(
                AuditedStream.pair(try AuditLogs.merged(["\(dir)/r1", "\(dir)/r2"])),
                logNames: AuditLogs.names(of: ["\(dir)/r1/", "\(dir)/r2"]))
            #expect(
                table[0][1] == "REPLICA"
                    && table.dropFirst().map { "\($0[1]) \($0[2])" } == [
                        "r1 r1/0", "r2 r2/0", "r1 r1/1", "r1 r1/2", "r2 r2/1",
                    ])
        }
    }

    @Test(
        "verify of two replicas' directories: each with its own key by key id; a missing key or a changed record fails")
    func verifiesEachLogWithItsKey() throws {
        try withTemporaryDirectory { dir in
            let start = Date().addingTimeInterval(-60)
            let first = try writeLog(dir, replica: "r1", at: [1, 2], start: start)
            let second = try writeLog(dir, replica: "r2", at: [1.5], start: start)
            for (key, name) in [(first, "k1.pem"), (second, "k2.pem")] {
                try DurableFile.write(path: "\(dir)/\(name)", bytes: key.publicKey.pem(), mode: 0o644)
            }
            let logs = ["\(dir)/r1", "\(dir)/r2"]
            try AuditVerifyCommand.parse(logs + ["--key", "\(dir)/k2.pem", "--key", "\(dir)/k1.pem", "--closed"]).run()
            try AuditVerifyCommand.parse(logs).run()
            #expect(throws: ExitCode(1)) { try AuditVerifyCommand.parse(logs + ["--key", "\(dir)/k1.pem"]).run() }

            let results = try AuditLogs.verify(
                [AuditLogs.Log(name: "r2", directory: "\(dir)/r2", isExcerpt: false)], keyFiles: ["\(dir)/k1.pem"],
                requireClosed: false)
            #expect(results[0].report.problem?.kind == .wrongKey)

            let segment = "\(dir)/r2/audit-000001.jsonl"
            let text = try String(contentsOfFile: segment, encoding: .utf8)
            try text.replacingOccurrences(of: "r2/0", with: "r2/9").write(
                toFile: segment, atomically: false, encoding: .utf8)
            #expect(throws: ExitCode(1)) { try AuditVerifyCommand.parse(logs).run() }
        }
    }

    @Test("an export of two logs holds one directory per replica, verifies offline, and names the log a change breaks")
    func exportOfACluster() throws {
        try withTemporaryDirectory { dir in
            let start = Date().addingTimeInterval(-60)
            _ = try writeLog(dir, replica: "r1", at: [1], start: start)
            _ = try writeLog(dir, replica: "r2", at: [2], start: start)
            let bundle = "\(dir)/cluster.tar"
            let said = try AuditBundle.export(
                directories: ["\(dir)/r1", "\(dir)/r2"], from: start, to: Date().addingTimeInterval(60), out: bundle)
            #expect(said.contains("2 segment(s) of 2 log(s)"), "\(said)")

            let unpacked = "\(dir)/unpacked"
            try makePrivateDirectory(unpacked)
            try AuditBundle.unpackChecked(bundle: bundle, into: unpacked)
            #expect(AuditLogs.logs(inUnpacked: unpacked).map(\.name) == ["r1", "r2"])
            try AuditVerifyCommand.parse([bundle]).run()

            // A bundle whose r2 log was rewritten together with its manifest entry: the chain breaks.
            let segment = "\(unpacked)/r2/audit-000001.jsonl"
            let text = try String(contentsOfFile: segment, encoding: .utf8)
            try text.replacingOccurrences(of: "r2/0", with: "r2/9").write(
                toFile: segment, atomically: false, encoding: .utf8)
            let manifest =
                try String(contentsOfFile: "\(unpacked)/\(AuditBundle.manifest)", encoding: .utf8).split(
                    separator: "\n"
                ).map { line in
                    line.hasSuffix(" r2/audit-000001.jsonl")
                        ? "\(try AuditBundle.sha256(of: segment))  r2/audit-000001.jsonl" : String(line)
                }.joined(separator: "\n") + "\n"
            try manifest.write(toFile: "\(unpacked)/\(AuditBundle.manifest)", atomically: false, encoding: .utf8)
            let forged = "\(dir)/forged.tar"
            try AuditBundle.run(["-cf", forged, "-C", unpacked, "."])
            #expect(throws: ExitCode(1)) { try AuditVerifyCommand.parse([forged]).run() }
            let results = try AuditLogs.verify(AuditLogs.logs(inUnpacked: unpacked), keyFiles: [], requireClosed: false)
            #expect(results.map(\.report.isValid) == [true, false])
        }
    }
}
