internal import Glibc
internal import TunnelTLS

/// The POSIX file operations TunnelAudit needs, with errors that name the path and the
/// system's reason ("No space left on device").
enum FileSystem {
    static func error(_ action: String, _ path: String, code: Int32 = errno) -> AuditError {
        AuditError(.io, "could not \(action) \(path): \(String(cString: strerror(code)))")
    }

    /// Creates `path` with `mode`, and missing parents with the same mode, unless it already is
    /// a directory. A new directory is made durable in its parent, or a crash could lose it
    /// together with the first files inside.
    static func makeDirectory(_ path: String, mode: mode_t) throws(AuditError) {
        if mkdir(path, mode) == 0 {
            try syncDirectory(parent(of: path))
            return
        }
        var code = errno
        if code == ENOENT, parent(of: path) != path {
            try makeDirectory(parent(of: path), mode: mode)
            if mkdir(path, mode) == 0 {
                try syncDirectory(parent(of: path))
                return
            }
            code = errno
        }
        var status = stat()
        guard code == EEXIST, stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw error("create the directory", path, code: code)
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Reads a small file (a key) whole, refusing anything over `limit` bytes: a wrong path
    /// pointing at a large file should fail, not exhaust memory.
    static func read(_ path: String, limit: Int = 64 * 1024) throws(AuditError) -> [UInt8] {
        do { return try DurableFile.read(path: path, limit: limit) } catch { throw AuditError(.io, error) }
    }

    /// Replaces `path` atomically and durably (TunnelTLS's `DurableFile`: temporary file,
    /// fsync, rename, directory fsync), so after a crash the file is the old or the new one.
    static func writeDurably(_ path: String, bytes: [UInt8], mode: mode_t) throws(AuditError) {
        do { try DurableFile.write(path: path, bytes: bytes, mode: mode) } catch { throw AuditError(.io, error) }
    }

    /// Writes all of `bytes` at `offset`; returns 0 or the errno of the failing call.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) -> Int32 {
        DurableFile.writeAll(fd, bytes, at: offset)
    }

    /// Makes entries created, renamed or removed in `path` durable.
    static func syncDirectory(_ path: String) throws(AuditError) {
        do { try DurableFile.syncDirectory(path) } catch { throw AuditError(.io, error) }
    }

    static func parent(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    static func baseName(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
    }
}

/// Reads a file line by line through one reusable buffer, for the verifier and for recovery.
///
/// Lines longer than `RecordFormat.maxRecordBytes` are reported as `tooLong` and skipped, so a
/// damaged or hostile file cannot make the reader buffer it whole.
final class LineReader {
    enum Ending {
        /// A complete line.
        case newline
        /// The file ends without a newline: a torn or truncated last line.
        case endOfFile
        /// Longer than any record can be; `bytes` is empty.
        case tooLong
    }

    struct Line {
        /// Without the newline; valid only until the next call to `next()`.
        let bytes: UnsafeRawBufferPointer
        /// 1-based.
        let number: Int
        /// Offset of the line's first byte in the file.
        let offset: Int64
        let ending: Ending
    }

    let path: String
    private let fd: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// File offset of `buffer[start]`: just past the last line returned, so the file's size
    /// once `next()` has returned nil.
    private(set) var startOffset: Int64 = 0
    private var lineNumber = 0
    private var atEndOfFile = false
    private var skippingLongLine = false

    init(path: String) throws(AuditError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystem.error("open", path) }
        self.path = path
        self.fd = fd
        // Room for a maximal line plus a read of at least 1 MiB after compaction.
        buffer = .allocate(byteCount: RecordFormat.maxRecordBytes + (1 << 20), alignment: 16)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    func next() throws(AuditError) -> Line? {
        let base = buffer.baseAddress!
        while true {
            if let newline = memchr(base + start, 0x0A, end - start) {
                if let line = takeLine(endingAt: base.distance(to: newline)) { return line }
                continue
            }
            let pending = end - start
            if atEndOfFile {
                guard pending > 0, !skippingLongLine else { return nil }
                lineNumber += 1
                let line = Line(
                    bytes: UnsafeRawBufferPointer(start: base + start, count: pending), number: lineNumber,
                    offset: startOffset, ending: .endOfFile)
                start = end
                startOffset += Int64(pending)
                return line
            }
            if skippingLongLine {
                // Discard the rest of an over-long line until its newline turns up.
                startOffset += Int64(pending)
                start = 0
                end = 0
            } else if pending > RecordFormat.maxRecordBytes {
                lineNumber += 1
                let line = Line(
                    bytes: UnsafeRawBufferPointer(start: base, count: 0), number: lineNumber, offset: startOffset,
                    ending: .tooLong)
                skippingLongLine = true
                startOffset += Int64(pending)
                start = 0
                end = 0
                return line
            } else if start > 0 {
                memmove(base, base + start, pending)
                start = 0
                end = pending
            }
            let count = read(fd, base + end, buffer.count - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystem.error("read", path)
            }
            if count == 0 { atEndOfFile = true } else { end += count }
        }
    }

    /// Consumes the buffered line that ends at `newlineIndex`: nil when it was the tail of an
    /// over-long line being skipped.
    private func takeLine(endingAt newlineIndex: Int) -> Line? {
        let base = buffer.baseAddress!
        let lineStart = start
        let lineOffset = startOffset
        let length = newlineIndex - lineStart
        start = newlineIndex + 1
        startOffset += Int64(length + 1)
        if skippingLongLine {
            skippingLongLine = false
            return nil
        }
        lineNumber += 1
        guard length <= RecordFormat.maxRecordBytes else {
            return Line(
                bytes: UnsafeRawBufferPointer(start: base, count: 0), number: lineNumber, offset: lineOffset,
                ending: .tooLong)
        }
        return Line(
            bytes: UnsafeRawBufferPointer(start: base + lineStart, count: length), number: lineNumber,
            offset: lineOffset, ending: .newline)
    }
}
