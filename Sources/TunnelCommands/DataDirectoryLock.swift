import Foundation

/// The lock a gateway holds on its data directory for as long as it runs, so that a second
/// gateway started on the same directory stops before it opens the audit log, the store or the
/// keys: two writers would interleave records in one hash chain and break it.
///
/// It is `flock(2)` on `gateway.lock` in the directory. The kernel drops it when the holder
/// exits however it ends (kill -9 included), so a crash never leaves a stale lock to clear by
/// hand. The file holds the holder's PID, for the refusal's sentence only: the lock, not the
/// file's presence or content, is what counts. `flock(1)` takes the same lock, so a script
/// that must not run beside a gateway (a restore of fleet.db) can hold it too (deploy/UPGRADE.md).
final class DataDirectoryLock {
    static let fileName = "gateway.lock"

    let path: String
    private let descriptor: Int32

    /// Takes the lock on `directory` (which must exist), or throws the one sentence that names
    /// the directory, the holder's PID when the file says it, and `fix`.
    init(directory: String, fix: String) throws(CommandFailure) {
        path = "\(directory)/\(Self.fileName)"
        // Close-on-exec: a child (a shell, an sshd) must not inherit the lock and outlive us with it.
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw .failed("cannot open \(path): \(String(cString: strerror(errno)))", .localFile)
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure = errno
            let holder = Self.holder(descriptor)
            close(descriptor)
            guard failure == EWOULDBLOCK else {
                throw .failed("cannot lock \(path): \(String(cString: strerror(failure)))", .localFile)
            }
            throw .failed(
                "another gateway is running on \(directory)\(holder.map { " (pid \($0))" } ?? ""); \(fix)",
                .dataDirectoryInUse)
        }
        self.descriptor = descriptor
        let pid = Array("\(getpid())\n".utf8)
        // Best effort: the PID only makes the refusal clearer; the lock is already ours.
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(descriptor) }

    /// The lock of the data directory holding `pkiDirectory` (a gateway's default `DATA/pki`),
    /// taken so that `tunnel ca init --force` never replaces the CA under a running gateway;
    /// nil when the parent is no gateway's data directory (it has no lock file).
    static func guarding(pkiDirectory: String) throws(CommandFailure) -> DataDirectoryLock? {
        let parent = (pkiDirectory as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        guard FileManager.default.fileExists(atPath: "\(directory)/\(fileName)") else { return nil }
        return try DataDirectoryLock(directory: directory, fix: "stop it before you replace its CA")
    }

    /// The PID the lock file names, when it names one (it is empty for an instant while a new
    /// holder writes it).
    private static func holder(_ descriptor: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 16)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text).flatMap { $0 > 0 ? $0 : nil }
    }
}

extension GatewaySettings {
    /// The data directory's lock, taken before anything in it is opened: created 0700 if missing,
    /// then locked. Hold the result until the gateway has stopped.
    func lockDataDirectory(fix: String = "stop it or use another --data-dir") throws(CommandFailure)
        -> DataDirectoryLock
    {
        try makePrivateDirectory(dataDir)
        return try DataDirectoryLock(directory: dataDir, fix: fix)
    }
}
