internal import Glibc

/// Gives back the code and read-only data pages a long-running process touched only while starting.
///
/// Most of an idle agent's or gateway's resident set is clean pages of the files it maps (the
/// binary, the Swift runtime, Foundation, OpenSSL, libc): the dynamic loader's relocations,
/// settings, YAML, the store's migrations and the first TLS handshake touch them once, and the
/// kernel maps up to 16 neighbouring page-cache pages on each fault (docs/BENCHMARKS.md, "Edge
/// agent footprint"). Once the process is serving, they are dropped from the page tables with
/// `MADV_DONTNEED`: they stay in the page cache, nothing is lost, and what runs afterwards
/// (keepalives, streams) faults back in. Only mappings that can hold no data of the process's own
/// are released: file-backed, private, not writable, and without one anonymous
/// (copied-on-write) page — so never the relocated RELRO data.
package enum StartupPages {
    /// One mapping to release.
    package struct Range: Equatable {
        package let start: UInt
        package let length: UInt

        package init(start: UInt, length: UInt) {
            self.start = start
            self.length = length
        }
    }

    /// The mappings of `/proc/self/smaps` text that are safe to release (see the type's comment).
    package static func releasable(smaps text: String) -> [Range] {
        var ranges: [Range] = []
        var candidate: Range?
        for line in text.split(separator: "\n") {
            if let mapping = header(line) {
                candidate = mapping
            } else if line.hasPrefix("Anonymous:"), let mapping = candidate {
                let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
                if kib == "0" { ranges.append(mapping) }
                candidate = nil
            }
        }
        return ranges
    }

    /// `start-end perms offset dev inode /path` → the range, when the mapping is a private,
    /// non-writable mapping of a file; nil for every other line.
    private static func header(_ line: Substring) -> Range? {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        // The path is padded with spaces to a column.
        guard fields.count == 6, fields[5].drop(while: { $0 == " " }).hasPrefix("/") else { return nil }
        let bounds = fields[0].split(separator: "-")
        let perms = Array(fields[1].utf8)
        guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
            end > start, perms.count == 4, perms[1] != UInt8(ascii: "w"), perms[3] == UInt8(ascii: "p")
        else { return nil }
        return Range(start: start, length: end - start)
    }

    /// Releases the start-up pages of this process; returns how many bytes of mappings were
    /// advised (not how many were resident). Failures are ignored: this only saves memory.
    @discardableResult
    package static func release() -> UInt {
        guard let text = readSmaps() else { return 0 }
        var advised: UInt = 0
        for range in releasable(smaps: text) {
            guard let address = UnsafeMutableRawPointer(bitPattern: range.start) else { continue }
            if madvise(address, Int(range.length), MADV_DONTNEED) == 0 { advised += range.length }
        }
        return advised
    }

    /// `/proc/self/smaps`, at most 4 MiB of it (a few hundred mappings need about 300 KiB).
    private static func readSmaps() -> String? {
        let fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count < 4 << 20 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
