import Glibc

/// Which log lines an operator wants: those containing a fixed byte string, or all.
///
/// A fixed string rather than a regular expression on purpose: the filter runs on the client's
/// only thread, where a backtracking pattern from the operator (`(a+)+$`) could stall the
/// tunnel itself; a substring search costs at most line length × pattern length.
struct LineFilter {
    /// Empty passes every line.
    let needle: [UInt8]

    init(_ pattern: String?) {
        needle = Array((pattern ?? "").utf8)
    }

    func matches(_ line: UnsafeRawBufferPointer) -> Bool {
        guard !needle.isEmpty else { return true }
        guard line.count >= needle.count, let base = line.baseAddress else { return false }
        return needle.withUnsafeBytes { needle in
            let first = Int32(needle[0])
            var start = 0
            let lastStart = line.count - needle.count
            // memchr finds each candidate first byte; memcmp checks the rest there.
            while start <= lastStart, let hit = memchr(base + start, first, lastStart - start + 1) {
                let offset = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + offset, needle.baseAddress!, needle.count) == 0 { return true }
                start = offset + 1
            }
            return false
        }
    }
}

/// Cuts a byte stream into whole lines, keeps those the filter passes, and appends each to an
/// output buffer as `prefix`, the line, and a newline.
///
/// The start of a line whose newline has not arrived yet is held back until it does (a log
/// line half written when we read must not be sent in two pieces), but never more than
/// `maxLineLength` bytes of it: a longer line is passed on in pieces of that size.
struct LineFramer {
    /// Longer lines are cut; this bounds what one file's unfinished line can hold.
    static let maxLineLength = 32 * 1024
    private static let newline = UInt8(ascii: "\n")

    /// Put before every line: the file's name when a source has several files, else empty.
    var prefix: [UInt8]
    /// The unfinished line.
    private var partial: [UInt8] = []

    init(prefix: [UInt8] = []) {
        self.prefix = prefix
    }

    /// Appends the lines completed by `bytes` to `output`; keeps the unfinished rest.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, filter: LineFilter, into output: inout [UInt8]) {
        var start = 0
        while start < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            guard let hit = memchr(rest.baseAddress!, Int32(Self.newline), rest.count) else {
                hold(rest, filter: filter, into: &output)
                return
            }
            let length = rest.baseAddress!.distance(to: UnsafeRawPointer(hit))
            let line = UnsafeRawBufferPointer(rebasing: rest[..<length])
            if partial.isEmpty {
                emit(line, filter: filter, into: &output)
            } else {
                hold(line, filter: filter, into: &output)
                flush(filter: filter, into: &output)
            }
            start += length + 1
        }
    }

    /// Passes on the unfinished line as if its newline had come: at the end of a one-shot read,
    /// and when its file is truncated or rotated away (nothing more will complete it).
    mutating func flush(filter: LineFilter, into output: inout [UInt8]) {
        guard !partial.isEmpty else { return }
        partial.withUnsafeBytes { emit($0, filter: filter, into: &output) }
        partial.removeAll(keepingCapacity: true)
    }

    /// Adds to the unfinished line, passing on a full `maxLineLength` whenever it is reached.
    private mutating func hold(_ bytes: UnsafeRawBufferPointer, filter: LineFilter, into output: inout [UInt8]) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let room = Self.maxLineLength - partial.count
            partial.append(contentsOf: rest.prefix(room))
            rest = rest.dropFirst(room)
            if partial.count == Self.maxLineLength { flush(filter: filter, into: &output) }
        }
    }

    private func emit(_ line: UnsafeRawBufferPointer, filter: LineFilter, into output: inout [UInt8]) {
        var rest = line[...]
        repeat {
            let piece = UnsafeRawBufferPointer(rebasing: rest.prefix(Self.maxLineLength))
            if filter.matches(piece) {
                output.append(contentsOf: prefix)
                output.append(contentsOf: piece)
                output.append(Self.newline)
            }
            rest = rest.dropFirst(Self.maxLineLength)
        } while !rest.isEmpty
    }
}
