import Foundation
import Testing

@testable import TunnelCommands

/// One gateway per data directory: the second stops at the lock, before it touches anything.
@Suite struct DataDirectoryLockTests {
    /// Every file under `directory` with its bytes, for a before-and-after comparison.
    private func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let name = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = "\(directory)/\(name)"
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            files[name] = isDirectory.boolValue ? Data() : try Data(contentsOf: URL(fileURLWithPath: path))
        }
        return files
    }

    @Test("a second lock on the directory is refused naming the directory, the holder's pid and the fix")
    func secondHolderRefused() throws {
        try withTemporaryDirectory { directory in
            var first: DataDirectoryLock? = try DataDirectoryLock(directory: directory, fix: "stop it")
            #expect(try String(contentsOfFile: "\(directory)/gateway.lock", encoding: .utf8) == "\(getpid())\n")
            let refusal = failure { try DataDirectoryLock(directory: directory, fix: "stop it") }
            #expect(refusal?.code == .dataDirectoryInUse)
            #expect(refusal?.message == "another gateway is running on \(directory) (pid \(getpid())); stop it")
            withExtendedLifetime(first) {}
            first = nil
            // Released with its holder (as the kernel releases it when a process dies): free again.
            #expect(throws: Never.self) { _ = try DataDirectoryLock(directory: directory, fix: "stop it") }
        }
    }

    @Test("tunnel gateway on a locked data directory fails before it opens or writes anything there")
    func gatewayLeavesTheDirectoryAlone() throws {
        try withTemporaryDirectory { directory in
            let holder = try DataDirectoryLock(directory: directory, fix: "stop it")
            try FileManager.default.createDirectory(atPath: "\(directory)/audit", withIntermediateDirectories: false)
            try writeFile("\(directory)/audit/segment-000001.log", "{\"seq\":1}\n")
            let before = try snapshot(directory)
            let command = try GatewayCommand.parse(["--data-dir", directory, "--listen", "127.0.0.1:1"])
            let refusal = failure { try command.run() }
            #expect(refusal?.code == .dataDirectoryInUse)
            #expect(
                refusal?.message
                    == "another gateway is running on \(directory) (pid \(getpid())); stop it or use another --data-dir"
            )
            // No PKI, store, audit key or admin socket made; the log and the lock file as they were.
            #expect(try snapshot(directory) == before)
            withExtendedLifetime(holder) {}
        }
    }

    @Test("ca init --force does not replace the CA of a running gateway's pki-dir; elsewhere it needs no lock")
    func caInitBesideARunningGateway() throws {
        try withTemporaryDirectory { directory in
            let holder = try DataDirectoryLock(directory: directory, fix: "stop it")
            let refusal = failure { try CAInitCommand.parse(["--dir", "\(directory)/pki", "--force"]).run() }
            #expect(refusal?.code == .dataDirectoryInUse)
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/pki"))
            withExtendedLifetime(holder) {}
            #expect(throws: Never.self) { try CAInitCommand.parse(["--dir", "\(directory)/elsewhere/pki"]).run() }
        }
    }
}
