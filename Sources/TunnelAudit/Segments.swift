internal import Glibc

/// Segment file names: `audit-000001.jsonl`, `audit-000002.jsonl`, … (at least six digits, no
/// other leading zeros), so that name order is number order up to a million segments.
enum SegmentName {
    static func make(_ number: Int) -> String {
        let digits = String(number)
        return "audit-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".jsonl"
    }

    /// The number of a segment file name, or nil for any other name.
    static func number(of name: String) -> Int? {
        guard name.hasPrefix("audit-"), name.hasSuffix(".jsonl") else { return nil }
        let digits = name.dropFirst(6).dropLast(6)
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits), number > 0,
            make(number) == name
        else { return nil }
        return number
    }

    /// The segment files in `directory`, in number order. Other files are ignored.
    static func list(directory: String) throws(AuditError) -> [(number: Int, name: String)] {
        guard let stream = opendir(directory) else { throw FileSystem.error("list", directory) }
        defer { closedir(stream) }
        var segments: [(number: Int, name: String)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let number = number(of: name) { segments.append((number, name)) }
        }
        return segments.sorted { $0.number < $1.number }
    }
}

/// The segment the writer appends to: a file descriptor it owns, and the length of the file's
/// complete records.
///
/// Records are written with pwrite(2) at `size`, never with O_APPEND, so that after a failed
/// write the file can be cut back to `size` and no partial record is ever followed by new ones.
final class SegmentFile {
    let name: String
    let path: String
    private let fd: Int32
    /// Length of the complete records: where the next one goes.
    private(set) var size: Int64

    /// Opens (creating, mode 0600, if missing) `name` in `directory`, positioned at its end.
    init(directory: String, name: String) throws(AuditError) {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileSystem.error("open", path) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let error = FileSystem.error("stat", path)
            close(fd)
            throw error
        }
        self.name = name
        self.path = path
        self.fd = fd
        self.size = Int64(status.st_size)
    }

    deinit {
        close(fd)
    }

    /// Writes one record; with `durable`, also waits for fdatasync(2). On any failure the file
    /// is cut back to the previous record so no torn line stays behind, and the error says so.
    func append(_ bytes: [UInt8], durable: Bool) throws(AuditError) {
        var code = bytes.withUnsafeBytes { FileSystem.writeAll(fd, $0, at: size) }
        var action = "write to"
        if code == 0, durable, fdatasync(fd) != 0 {
            code = errno
            action = "fdatasync"
        }
        guard code != 0 else {
            size += Int64(bytes.count)
            return
        }
        let cut = ftruncate(fd, off_t(size)) == 0
        let message = FileSystem.error(action, path, code: code).message
        throw AuditError(
            .io,
            cut
                ? "\(message); the record was not logged"
                : "\(message); the record was not logged, and cutting the file back to \(size) bytes failed too (retry will try again)"
        )
    }

    /// Forces records written without `durable` to disk.
    func sync() throws(AuditError) {
        guard fdatasync(fd) == 0 else { throw FileSystem.error("fdatasync", path) }
    }

    /// Cuts the file to `length` bytes and forces that to disk: removes a torn tail after a
    /// crash, or whatever a failed write left past `size`.
    func truncate(to length: Int64) throws(AuditError) {
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileSystem.error("truncate", path) }
        guard fsync(fd) == 0 else { throw FileSystem.error("fsync", path) }
        size = length
    }
}
