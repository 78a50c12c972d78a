import Glibc
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Lexical path rules for file log sources, shared by the configuration check and the service.
public enum LogPaths {
    /// `path` with `.`, `..` and repeated slashes resolved lexically (without asking the file
    /// system), so `/var/log/../etc/shadow` is seen for what it names: `/etc/shadow`.
    public static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": _ = components.popLast()
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// Whether `path` lies strictly below the directory `root`; both absolute and normalized.
    public static func isInside(_ path: String, root: String) -> Bool {
        root == "/" ? path != "/" : path.hasPrefix(root + "/")
    }

    /// Whether `pattern` has glob(7) wildcards.
    static func isGlob(_ pattern: String) -> Bool {
        pattern.contains { "*?[".contains($0) }
    }

    /// The directories of `pattern` before its first wildcard (`/var/log/app` for
    /// `/var/log/app/*.log`): a matched file is named by its path below them.
    static func fixedDirectory(of pattern: String) -> String {
        var fixed: [Substring] = []
        for component in pattern.split(separator: "/").dropLast() {
            if isGlob(String(component)) { break }
            fixed.append(component)
        }
        return "/" + fixed.joined(separator: "/")
    }

    /// The real path (symlinks resolved) of an existing file or directory.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// A file as the kernel knows it: the same pair after a rename is the same file.
struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    init(_ status: stat) {
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}

/// One open log file of a read: the one owner of its descriptor, where the read is in it, and
/// its unfinished last line.
final class LogFile {
    let descriptor: Int32
    let identity: FileIdentity
    /// Where the next read starts.
    var offset: Int64
    /// Where a one-shot read stops: the size when the read began. Nil while following.
    var end: Int64?
    var lines: LineFramer
    /// No longer at any matched path (rotated away, deleted): read to its end, then dropped.
    var retiring = false

    /// Opens `path` if it is a regular file whose real path lies under `realRoot`, deciding
    /// before anything is opened: a symlink to a FIFO or a device outside the root is never
    /// opened, since opening some devices acts (a watchdog starts, a tape rewinds). The real
    /// path is then opened component by component from the root with O_NOFOLLOW, so a
    /// directory swapped for a symlink after the check fails the open instead of leading
    /// outside; O_NONBLOCK keeps a FIFO planted under the root from hanging the client; and
    /// fstat must find the regular file the check saw. The reason otherwise.
    static func open(_ path: String, realRoot: String, prefix: [UInt8]) -> Result<LogFile, LogRefusal> {
        guard let real = LogPaths.realPath(path) else {
            return .failure(LogRefusal("cannot open \(path): \(String(cString: strerror(errno)))"))
        }
        guard LogPaths.isInside(real, root: realRoot) else {
            return .failure(LogRefusal("\(path) leads outside the log root \(realRoot); it is not served"))
        }
        var checked = stat()
        guard stat(real, &checked) == 0, checked.st_mode & S_IFMT == S_IFREG else {
            return .failure(LogRefusal("\(path) is not a regular file"))
        }
        let descriptor = openBeneath(realRoot, String(real.dropFirst(realRoot == "/" ? 1 : realRoot.utf8.count + 1)))
        guard descriptor >= 0 else {
            return .failure(LogRefusal("cannot open \(path): \(String(cString: strerror(errno)))"))
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
            FileIdentity(status) == FileIdentity(checked)
        else {
            Glibc.close(descriptor)
            return .failure(LogRefusal("\(path) changed while it was opened; it is not served"))
        }
        return .success(
            LogFile(descriptor: descriptor, identity: FileIdentity(status), lines: LineFramer(prefix: prefix)))
    }

    /// Opens `relative` (no `.`, `..` or symlinks: a real path) under `root` one component at
    /// a time, following no symlink; -1 with errno set on failure.
    private static func openBeneath(_ root: String, _ relative: String) -> Int32 {
        let components = relative.split(separator: "/").map(String.init)
        guard let last = components.last else {
            errno = EISDIR
            return -1
        }
        var directory = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        for component in components.dropLast() where directory >= 0 {
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let saved = errno
            Glibc.close(directory)
            errno = saved
            directory = next
        }
        guard directory >= 0 else { return -1 }
        defer { Glibc.close(directory) }
        return openat(directory, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    }

    private init(descriptor: Int32, identity: FileIdentity, lines: LineFramer) {
        self.descriptor = descriptor
        self.identity = identity
        self.lines = lines
        offset = 0
    }

    deinit {
        Glibc.close(descriptor)
    }

    /// The file's size and modification time now.
    func status() -> stat? {
        var status = stat()
        return fstat(descriptor, &status) == 0 ? status : nil
    }

    /// Reads at `offset` into `buffer`; 0 at the end of the file or on an error.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        read(at: offset, into: buffer)
    }

    private func read(at position: Int64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var count: Int
        repeat {
            count = pread(descriptor, buffer.baseAddress, buffer.count, off_t(position))
        } while count < 0 && errno == EINTR
        return max(0, count)
    }

    /// Where the last `lines` lines before `size` begin. Reads backwards one buffer at a time,
    /// and no further back than `LogFiles.maxTailScan`: past that, the read starts after the
    /// earliest newline it saw.
    func startOfLast(_ lines: Int, before size: Int64, buffer: UnsafeMutableRawBufferPointer) -> Int64 {
        guard lines > 0, size > 0 else { return size }
        let floor = max(0, size - LogFiles.maxTailScan)
        var position = size
        var newlines = 0
        var earliestLineStart = size
        while position > floor {
            let count = Int(min(Int64(buffer.count), position - floor))
            let start = position - Int64(count)
            guard read(at: start, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count])) == count else {
                return earliestLineStart
            }
            for index in stride(from: count - 1, through: 0, by: -1) where buffer[index] == UInt8(ascii: "\n") {
                let lineStart = start + Int64(index) + 1
                // The newline that ends the file ends its last line; it starts none.
                guard lineStart < size else { continue }
                newlines += 1
                earliestLineStart = lineStart
                if newlines == lines { return lineStart }
            }
            position = start
        }
        return floor == 0 ? 0 : earliestLineStart
    }
}

/// The files of one file source (a path, or a glob) through one read: the last lines of each,
/// then, when following, whatever is appended, across rotation.
///
/// Files are tracked by device and inode, not by name. When a file's path moves on to a new
/// file (rename rotation) the old one is read to its end, then the new one from its start; when
/// a file shrinks (copytruncate) it is read again from its start. A glob is expanded again at
/// every rescan, so files that appear later are read from their start.
///
/// Every file opened must lie under the real log root once symlinks are resolved. Reads are
/// synchronous: local files, a bounded amount per call. Loop-confined.
final class LogFiles {
    /// At most this many files per source are read (and held open).
    static let maxFiles = 64
    /// The backwards search for the last lines reads at most this much of each file.
    static let maxTailScan: Int64 = 16 << 20
    /// One read from a file.
    static let chunkSize = 64 * 1024

    private let pattern: String
    private let isGlob: Bool
    private let fixedDirectory: String
    private let realRoot: String
    private let filter: LineFilter
    private let logger: Logger
    /// In reading order: oldest first, so the newest lines of a one-shot read come last.
    private var files: [LogFile] = []
    /// Files we would not open (outside the root, unreadable), so a rescan does not retry and
    /// log them every time.
    private var refused: Set<FileIdentity> = []
    /// Set once the source matched more than `maxFiles`: said once, not at every rescan.
    private var reportedTooManyFiles = false
    private let buffer: UnsafeMutableRawBufferPointer

    /// Opens the source's files and places each read at its last `lines` lines. Files not
    /// modified since `since` (Unix seconds) contribute no lines, but are followed from their end.
    /// Throws a refusal when `pattern` is a single file that is missing or not servable, or
    /// when a one-shot read's glob matches no file.
    init(pattern: String, root: String, lines: Int, since: Int64?, follow: Bool, filter: LineFilter, logger: Logger)
        throws(LogRefusal)
    {
        guard let realRoot = LogPaths.realPath(root) else {
            throw LogRefusal("the log root \(root) does not exist on this node")
        }
        buffer = .allocate(byteCount: Self.chunkSize, alignment: 16)
        self.pattern = pattern
        self.realRoot = realRoot
        self.filter = filter
        self.logger = logger
        isGlob = LogPaths.isGlob(pattern)
        fixedDirectory = LogPaths.fixedDirectory(of: pattern)
        var opened: [(file: LogFile, modified: Int)] = []
        for path in expand() {
            switch LogFile.open(path, realRoot: realRoot, prefix: prefix(for: path)) {
            case .success(let file):
                guard let status = file.status() else { continue }
                let size = Int64(status.st_size)
                let modified = status.st_mtim.tv_sec
                let recent = since.map { modified >= $0 } ?? true
                file.offset = recent ? file.startOfLast(lines, before: size, buffer: buffer) : size
                if !follow { file.end = size }
                opened.append((file, modified))
            case .failure(let refusal):
                if !isGlob { throw refusal }
                refuse(path, refusal)
            }
        }
        // A one-shot read of nothing is a mistake worth a sentence; a follow waits for files.
        if opened.isEmpty, !isGlob || !follow {
            throw LogRefusal(
                isGlob ? "\(pattern) matches no file on this node" : "\(pattern) does not exist on this node")
        }
        files = opened.sorted { $0.modified < $1.modified }.map(\.file)
    }

    deinit {
        buffer.deallocate()
    }

    /// The paths the source names now: the file itself, or the glob's matches (at most `maxFiles`).
    private func expand() -> [String] {
        guard isGlob else { return FileManager.default.fileExists(atPath: pattern) ? [pattern] : [] }
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(pattern, 0, nil, &matches) == 0 else { return [] }
        let count = Int(matches.gl_pathc)
        if count > Self.maxFiles, !reportedTooManyFiles {
            reportedTooManyFiles = true
            logger.warning(
                "log source matches too many files; reading the first ones",
                metadata: [
                    "log.pattern": "\(pattern)", "log.matches": "\(count)", "log.read": "\(Self.maxFiles)",
                ])
        }
        return (0..<min(count, Self.maxFiles)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }
    }

    /// Logs once that the file at `path` is not served, and remembers it so rescans skip it.
    private func refuse(_ path: String, _ refusal: LogRefusal) {
        var status = stat()
        if stat(path, &status) == 0 { refused.insert(FileIdentity(status)) }
        logger.notice("log file not served", metadata: ["log.path": "\(path)", "reason": "\(refusal.message)"])
    }

    /// What each line of a file is prefixed with: for a glob, the file's path below the glob's
    /// fixed directories, so lines from several files can be told apart.
    private func prefix(for path: String) -> [UInt8] {
        guard isGlob else { return [] }
        let name = path.hasPrefix(fixedDirectory + "/") ? String(path.dropFirst(fixedDirectory.count + 1)) : path
        return Array("\(name): ".utf8)
    }

    /// Reads at most `budget` bytes, appending the lines they complete to `output`. Files are
    /// read in order; a one-shot read finishes each file before the next. Returns whether more
    /// is ready to read now (false: caught up, or a one-shot read is complete).
    func read(budget: Int, into output: inout [UInt8]) -> Bool {
        var used = 0
        var index = 0
        while index < files.count {
            let file = files[index]
            while used < budget {
                let limit = file.end.map { Int(min(Int64(Self.chunkSize), $0 - file.offset)) } ?? Self.chunkSize
                let count =
                    limit > 0
                    ? file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(limit, budget - used)])) : 0
                guard count > 0 else { break }
                file.offset += Int64(count)
                used += count
                file.lines.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]), filter: filter, into: &output)
            }
            if used >= budget { return true }
            // This file is read to its end (for now). One-shot and rotated-away files are done.
            if file.end != nil || file.retiring {
                file.lines.flush(filter: filter, into: &output)
                files.remove(at: index)
            } else {
                index += 1
            }
        }
        return false
    }

    /// Whether a one-shot read has passed on everything.
    var isComplete: Bool { files.isEmpty }

    /// For following: expands the source again, opens new files, retires files no longer at any
    /// matched path, and rewinds files that shrank. Until something is at a matched path again
    /// the files read so far stay: a rotated file is still written until its writer reopens.
    func rescan(into output: inout [UInt8]) {
        let paths = expand()
        var present: Set<FileIdentity> = []
        for path in paths {
            var status = stat()
            guard stat(path, &status) == 0 else { continue }
            let identity = FileIdentity(status)
            present.insert(identity)
            guard !files.contains(where: { $0.identity == identity }), !refused.contains(identity) else { continue }
            switch LogFile.open(path, realRoot: realRoot, prefix: prefix(for: path)) {
            case .success(let file) where files.count < Self.maxFiles:
                files.append(file)
            case .success:
                continue
            case .failure(let refusal):
                refuse(path, refusal)
            }
        }
        // Only files still at a matched path need remembering: this keeps the set bounded.
        refused.formIntersection(present)
        for file in files {
            if !paths.isEmpty, !present.contains(file.identity) { file.retiring = true }
            if !file.retiring, let status = file.status(), Int64(status.st_size) < file.offset {
                // Truncated in place (copytruncate): what is there now was written since.
                file.lines.flush(filter: filter, into: &output)
                file.offset = 0
            }
        }
    }
}
