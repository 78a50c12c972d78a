/// A node-name glob, compiled once when the policy is parsed.
///
/// `*` matches any run of characters (also none), `?` exactly one; every other character matches
/// itself only, so `.` and `[` are plain characters, never regex or bracket syntax. The pattern
/// must match the whole name, not a part of it. Matching compares UTF-8 bytes, which is per
/// character for node names since those are ASCII DNS labels.
struct NodePattern: Sendable, Equatable {
    /// The pattern as written in the policy file, for messages.
    let text: String
    private let bytes: [UInt8]

    init(_ text: String) {
        self.text = text
        self.bytes = Array(text.utf8)
    }

    func matches(_ name: String) -> Bool {
        // Closures, not method references: a partially applied method allocates per call in debug builds.
        if let result = name.utf8.withContiguousStorageIfAvailable({ matches($0) }) { return result }
        // Only strings without native UTF-8 storage get here; the gateway's names never do.
        return Array(name.utf8).withUnsafeBufferPointer { matches($0) }
    }

    /// Left-to-right matching that remembers only the last `*`: when a later literal fails, that
    /// star takes one more byte and matching resumes after it. Earlier stars never need to be
    /// revisited, so the work is bounded by pattern length × name length with no allocation.
    private func matches(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.withUnsafeBufferPointer { pattern in
            let star = UInt8(ascii: "*"), any = UInt8(ascii: "?")
            var p = 0, n = 0
            var lastStar: Int? = nil, resumeAt = 0
            while n < name.count {
                if p < pattern.count, pattern[p] == star {
                    lastStar = p
                    resumeAt = n
                    p += 1
                } else if p < pattern.count, pattern[p] == any || pattern[p] == name[n] {
                    p += 1
                    n += 1
                } else if let starAt = lastStar {
                    p = starAt + 1
                    resumeAt += 1
                    n = resumeAt
                } else {
                    return false
                }
            }
            while p < pattern.count, pattern[p] == star { p += 1 }
            return p == pattern.count
        }
    }
}
