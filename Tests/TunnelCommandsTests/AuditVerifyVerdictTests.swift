import ArgumentParser
import Foundation
import Testing
import TunnelAudit
import TunnelTLS
@testable import TunnelCommands

/// Issue #9, item 12: `tunnel audit verify` does not say OK for a log that no checkpoint signs.
@Suite struct AuditVerifyVerdictTests {
    @Test("an intact but unsigned log is UNSIGNED with exit 3; once a checkpoint signs it, OK")
    func unsignedIsNotOK() throws {
        try withTemporaryDirectory { dir in
            let key = try AuditSigningKey.loadOrCreate(keyDirectory: "\(dir)/key")
            let log = try AuditLog(directory: "\(dir)/audit", signingKey: key, now: Date())
            for index in 0..<3 { try log.append(type: "stream_open", fields: ["stream": .string("s/\(index)")], now: Date(), durable: true) }
            try DurableFile.write(path: "\(dir)/audit/\(AuditSigningKey.publicKeyFileName)", bytes: key.publicKey.pem(), mode: 0o644)

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
}
