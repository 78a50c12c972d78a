import ArgumentParser
import Foundation
import Testing
import TunnelAudit
import TunnelTLS

@testable import TunnelCommands

/// Issue #9, item 12: `tunnel audit verify` does not say OK for a log that no checkpoint signs,
/// and `tunnel audit export --out` writes only a new file.
@Suite struct AuditVerifyVerdictTests {
    @Test("an intact but unsigned log is UNSIGNED with exit 3; once a checkpoint signs it, OK")
    func unsignedIsNotOK() throws {
        try withTemporaryDirectory { dir in
            let key = try AuditSigningKey.loadOrCreate(keyDirectory: "\(dir)/key")
            let log = try AuditLog(directory: "\(dir)/audit", signingKey: key, now: Date())
            for index in 0..<3 {
                try log.append(
                    type: "stream_open", fields: ["stream": .string("s/\(index)")], now: Date(), durable: true)
            }
            try DurableFile.write(
                path: "\(dir)/audit/\(AuditSigningKey.publicKeyFileName)", bytes: key.publicKey.pem(), mode: 0o644)

            let report = AuditVerifier.verify(directory: "\(dir)/audit", publicKeyFile: nil)
            #expect(report.isValid && !report.isSigned)
            #expect(report.summary.hasPrefix("UNSIGNED: "), "\(report.summary)")
            var command = try AuditVerifyCommand.parse(["\(dir)/audit"])
            #expect(throws: ExitCode(AuditVerifyCommand.unsignedExitCode)) { try command.run() }

            try log.close(now: Date())
            #expect(AuditVerifier.verify(directory: "\(dir)/audit", publicKeyFile: nil).summary.hasPrefix("OK: "))
            command = try AuditVerifyCommand.parse(["\(dir)/audit", "--closed"])
            try command.run()
        }
    }

    @Test("export --out follows no planted symlink and overwrites nothing; a new path gets a bundle that verifies")
    func exportWritesOnlyANewFile() throws {
        try withTemporaryDirectory { dir in
            let key = try AuditSigningKey.loadOrCreate(keyDirectory: "\(dir)/key")
            let log = try AuditLog(directory: "\(dir)/audit", signingKey: key, now: Date())
            try log.append(type: "stream_open", fields: ["stream": "s/1"], now: Date(), durable: true)
            try log.close(now: Date())
            try DurableFile.write(
                path: "\(dir)/audit/\(AuditSigningKey.publicKeyFileName)", bytes: key.publicKey.pem(), mode: 0o644)
            let victim = "\(dir)/victim"
            try DurableFile.write(path: victim, bytes: Array("precious".utf8), mode: 0o644)
            #expect(symlink(victim, "\(dir)/planted.tar") == 0)
            let (from, to) = (Date().addingTimeInterval(-3600), Date().addingTimeInterval(60))

            #expect(throws: CommandFailure.self) {
                try AuditBundle.export(directory: "\(dir)/audit", from: from, to: to, out: "\(dir)/planted.tar")
            }
            #expect(try DurableFile.read(path: victim) == Array("precious".utf8))
            #expect(throws: CommandFailure.self) {
                try AuditBundle.export(directory: "\(dir)/audit", from: from, to: to, out: victim)
            }
            #expect(try DurableFile.read(path: victim) == Array("precious".utf8))

            _ = try AuditBundle.export(directory: "\(dir)/audit", from: from, to: to, out: "\(dir)/fresh.tar")
            #expect(try AuditBundle.verify(bundle: "\(dir)/fresh.tar", publicKeyFile: nil).isValid)
        }
    }
}
