internal import Glibc

/// Crash-safe file replacement for keys, certificates and other files that must survive power loss.
///
/// A reader sees either the old file or the complete new one, never a torn mix: the bytes go
/// to a temporary file in the same directory (same file system, so `rename` is atomic), which
/// is fsynced, renamed over the target, and then the directory itself is fsynced so the rename
/// is on disk too.
public enum DurableFile {
    /// Refuse to read more than this by default: keys, certificates and configs are small, and
    /// an unbounded read of a wrong path (a device, a log) would exhaust memory.
    public static let defaultReadLimit = 1 << 20

    /// Atomically replaces `path` with `bytes`, created with exactly `mode` (e.g. `0o600` for keys).
    public static func write(path: String, bytes: [UInt8], mode: UInt32) throws(TLSError) {
        let (directory, base) = split(path)
        let temporary = "\(directory)/.\(base).tmp-\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))"

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(mode))
        guard fd >= 0 else { throw fileError("create", temporary) }
        var failure: TLSError?
        // open() applies the umask; fchmod sets exactly what the caller asked for.
        if fchmod(fd, mode_t(mode)) != 0 {
            failure = fileError("set the mode of", temporary)
        } else if case let code = bytes.withUnsafeBytes({ writeAll(fd, $0, at: 0) }), code != 0 {
            failure = fileError("write", temporary, code: code)
        } else if fsync(fd) != 0 {
            failure = fileError("fsync", temporary)
        }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 {
            failure = fileError("rename \(temporary) to", path)
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        try syncDirectory(directory)
    }

    /// Reads the whole file at `path`, refusing files larger than `limit` bytes.
    public static func read(path: String, limit: Int = defaultReadLimit) throws(TLSError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fileError("open", path) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fileError("stat", path) }
        guard Int(status.st_size) <= limit else {
            throw TLSError(
                .file, "\(path) is \(status.st_size) bytes, more than the \(limit) allowed; is this the right file?")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(status.st_size))
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw fileError("read", path)
            }
            if count == 0 { break }
            guard bytes.count + count <= limit else {
                throw TLSError(.file, "\(path) grew beyond \(limit) bytes while being read")
            }
            bytes += chunk[0..<count]
        }
        return bytes
    }

    /// Writes all of `bytes` at `offset`; returns 0 or the errno of the failing call. `package`:
    /// the audit log appends its segments with it.
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) -> Int32 {
        var done = 0
        while done < bytes.count {
            let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += written
        }
        return 0
    }

    /// Makes the entries created, renamed or removed in `directory` durable (a new recording, a
    /// renamed key, a new audit segment).
    package static func syncDirectory(_ directory: String) throws(TLSError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw fileError("open the directory", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw fileError("fsync the directory", directory) }
    }

    /// Splits into (directory, last component); a bare name lives in ".".
    private static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    private static func fileError(_ action: String, _ path: String, code: Int32 = errno) -> TLSError {
        TLSError(.file, "could not \(action) \(path): \(String(cString: strerror(code)))")
    }
}
