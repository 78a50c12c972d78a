import Foundation
import Testing

@testable import TunnelAudit

/// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), to simulate a full disk.
enum Tmpfs {
    static let mountable: Bool = {
        guard let probe = try? TemporaryDirectory() else { return false }
        guard mount(probe.path, options: "size=64k") else { return false }
        unmount(probe.path)
        return true
    }()

    static func mount(_ path: String, options: String) -> Bool {
        "\(options),mode=0700".withCString { Glibc.mount("tmpfs", path, "tmpfs", 0, $0) } == 0
    }

    /// Lazily (MNT_DETACH), so it also succeeds if a failed test left a file open.
    static func unmount(_ path: String) {
        umount2(path, Int32(MNT_DETACH))
    }
}

@Suite("Write failures")
struct FailureTests {
    @Test(.enabled(if: Tmpfs.mountable, "needs root to mount a 64 KiB tmpfs that simulates a full disk"))
    func fullDiskFailsCleanlyAndRetryResumes() throws {
        try fillDiskThenResume(AuditLogConfiguration(checkpointEvery: 10))
    }

    /// With 4 KiB segments and 1 KiB records, the disk often fills during a rotation.
    @Test(.enabled(if: Tmpfs.mountable, "needs root to mount a 64 KiB tmpfs that simulates a full disk"))
    func fullDiskAcrossRotationsFailsCleanlyAndRetryResumes() throws {
        try fillDiskThenResume(AuditLogConfiguration(maxSegmentBytes: 4096, checkpointEvery: 3))
    }

    private func fillDiskThenResume(_ policy: AuditLogConfiguration) throws {
        let temporary = try TemporaryDirectory()
        try withExtendedLifetime(temporary) {
            let disk = temporary.sub("disk")
            #expect(mkdir(disk, 0o700) == 0)
            try #require(Tmpfs.mount(disk, options: "size=64k"))
            defer { Tmpfs.unmount(disk) }
            let ballast = "\(disk)/ballast"
            try Data(count: 16 * 1024).write(to: URL(fileURLWithPath: ballast))

            var clock = TestClock()
            let key = try AuditSigningKey.generate()
            let directory = "\(disk)/log"
            let log = try AuditLog(directory: directory, signingKey: key, policy: policy, now: clock.next())
            let payload = AuditValue.string(String(repeating: "x", count: 1000))
            var failure: AuditError?
            var written: UInt64 = 0
            for _ in 0..<200 {
                do {
                    written = try log.append(type: "bulk", fields: ["data": payload], now: clock.next(), durable: false)
                } catch {
                    failure = error as? AuditError
                    break
                }
            }
            let error = try #require(failure, "64 KiB should fill up long before 200 KiB of records")
            #expect(error.code == .io && error.message.contains("No space left on device"), "\(error)")
            #expect(!log.isHealthy && log.lastSeq >= written)

            // Nothing partial stays behind: every file ends with a complete record.
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
                let contents = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))
                #expect(contents.isEmpty || contents.last == 0x0A, "\(name)")
            }

            let refused = #expect(throws: AuditError.self) {
                try log.append(type: "bulk", fields: [:], now: clock.next(), durable: false)
            }
            #expect(refused?.code == .failed && refused?.message.contains("retry") == true)
            #expect(throws: AuditError.self) { try log.close(now: clock.next()) }

            #expect(unlink(ballast) == 0)
            try log.retry(now: clock.next())
            #expect(log.isHealthy)
            let resumed = try String(contentsOfFile: "\(directory)/\(log.currentSegment)", encoding: .utf8)
                .split(separator: "\n").last!
            #expect(
                resumed.contains(#""refused_appends":1"#) && resumed.contains("No space left on device")
                    && resumed.contains("write_resumed"))
            try log.append(type: "bulk", fields: ["data": "after"], now: clock.next(), durable: true)
            try log.close(now: clock.next())

            let report = AuditVerifier.verify(directory: directory, publicKey: key.publicKey, requireClosed: true)
            #expect(report.isValid, "\(report.summary)")
        }
    }

    /// A tmpfs with four inodes (its root, a ballast file, the log directory, the first segment)
    /// lets the rotation checkpoint be written but not the next segment be created.
    @Test(.enabled(if: Tmpfs.mountable, "needs root to mount a tmpfs that runs out of inodes"))
    func rotationInterruptedByAFullDiskIsFinishedByRetry() throws {
        let temporary = try TemporaryDirectory()
        try withExtendedLifetime(temporary) {
            let disk = temporary.sub("disk")
            #expect(mkdir(disk, 0o700) == 0)
            try #require(Tmpfs.mount(disk, options: "size=1m,nr_inodes=4"))
            defer { Tmpfs.unmount(disk) }
            let ballast = "\(disk)/ballast"
            #expect(FileManager.default.createFile(atPath: ballast, contents: Data()))

            var clock = TestClock()
            let key = try AuditSigningKey.generate()
            let directory = "\(disk)/log"
            let log = try AuditLog(
                directory: directory, signingKey: key, policy: AuditLogConfiguration(maxSegmentBytes: 4096),
                now: clock.next())
            var failure: AuditError?
            for index in 0..<100 where failure == nil {
                do {
                    try log.append(
                        type: "request", fields: ["n": .int(Int64(index)), "path": "/api/v1/nodes/edge-17/services"],
                        now: clock.next(), durable: false)
                } catch {
                    failure = error as? AuditError
                }
            }
            let error = try #require(failure)
            #expect(
                error.message.contains("audit-000002.jsonl") && error.message.contains("No space left on device"),
                "\(error)")
            #expect(!log.isHealthy && log.currentSegment == "audit-000002.jsonl")
            // On disk this is the state a crash between the two rotation steps leaves.
            let interrupted = AuditVerifier.verify(directory: directory, publicKey: key.publicKey)
            #expect(interrupted.problem?.kind == .missingNextSegment, "\(interrupted.summary)")

            #expect(unlink(ballast) == 0)
            try log.retry(now: clock.next())
            try log.append(type: "request", fields: ["n": -1], now: clock.next(), durable: true)
            try log.close(now: clock.next())
            let lines = try String(contentsOfFile: "\(directory)/audit-000002.jsonl", encoding: .utf8).split(
                separator: "\n")
            #expect(lines[0].contains("segment_start") && lines[1].contains("write_resumed"))
            let report = AuditVerifier.verify(directory: directory, publicKey: key.publicKey, requireClosed: true)
            #expect(report.isValid, "\(report.summary)")
        }
    }

    @Test func unwritableDirectoryIsAClearError() throws {
        let temporary = try TemporaryDirectory()
        let file = temporary.sub("not-a-directory")
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let error = #expect(throws: AuditError.self) {
            try AuditLog(directory: file, signingKey: AuditSigningKey.generate(), now: Date())
        }
        #expect(error?.code == .io && error?.message.contains(file) == true)
    }
}
