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
    public static func write(path: String, bytes: [UInt8], mode: UInt32) throws {
        let (directory, base) = split(path)
        let temporary = "\(directory)/.\(base).tmp-\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))"

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(mode))
        guard fd >= 0 else { throw fileError("create", temporary) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            // open() applies the umask; fchmod sets exactly what the caller asked for.
            guard fchmod(fd, mode_t(mode)) == 0 else { throw fileError("set the mode of", temporary) }
            try writeAll(fd, bytes, path: temporary)
            guard fsync(fd) == 0 else { throw fileError("fsync", temporary) }
        }
        guard rename(temporary, path) == 0 else { throw fileError("rename \(temporary) to", path) }
        renamed = true
        try syncDirectory(directory)
    }

    /// Reads the whole file at `path`, refusing files larger than `limit` bytes.
    public static func read(path: String, limit: Int = defaultReadLimit) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fileError("open", path) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fileError("stat", path) }
        guard Int(status.st_size) <= limit else {
            throw TLSError(.file, "\(path) is \(status.st_size) bytes, more than the \(limit) allowed; is this the right file?")
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

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw fileError("write", path)
                }
                offset += written
            }
        }
    }

    private static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw fileError("open directory", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw fileError("fsync directory", directory) }
    }

    /// Splits into (directory, last component); a bare name lives in ".".
    private static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    private static func fileError(_ action: String, _ path: String) -> TLSError {
        let code = errno
        return TLSError(.file, "could not \(action) \(path): \(String(cString: strerror(code)))")
    }
}
