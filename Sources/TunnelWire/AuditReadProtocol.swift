/// An auditor's read of the gateway's audit directory over the tunnel (`tunnel audit serve
/// --gateway`), for operators whose roles have `audit: true`. The client lists the files, then
/// fetches each in chunks, and checks what it got offline like any copy: the gateway is not
/// trusted to say the log is intact.
public enum AuditReadRequest: Codable, Equatable, Sendable {
    /// The segments, the public key and the recordings, with their sizes now. The gateway
    /// records this as the auditor's read.
    case list
    /// Up to `AuditReadReply.maxChunk` bytes of `file` (a name from `list`) from `offset`.
    case fetch(file: String, offset: Int64)
}

/// One file the gateway offers an auditor.
public struct AuditFileInfo: Codable, Equatable, Sendable {
    public var name: String
    public var size: Int64
    public init(name: String, size: Int64) {
        self.name = name
        self.size = size
    }
}

public struct AuditReadReply: Codable, Equatable, Sendable {
    public var files: [AuditFileInfo]?
    /// A fetched chunk, base64; empty at the end of the file.
    public var data: String?
    public var error: String?

    public init(files: [AuditFileInfo]? = nil, data: String? = nil, error: String? = nil) {
        self.files = files
        self.data = data
        self.error = error
    }

    /// 128 KiB: as base64 it stays below a stream's initial 256 KiB window, so a reply never
    /// waits for window updates, and a large log costs round trips, not memory.
    public static let maxChunk = 128 * 1024

    /// The names an auditor may fetch: segments, the public key and recordings, nothing else
    /// (no path separators beyond `recordings/`, no hidden files), so the request cannot
    /// reach the signing key or anything outside the audit directory.
    public static func isAuditFile(_ name: String) -> Bool {
        if name == "audit-key.pub.pem" { return true }
        if name.hasPrefix("audit-"), name.hasSuffix(".jsonl") {
            let digits = name.dropFirst(6).dropLast(6)
            return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
        }
        guard name.hasPrefix("recordings/"), name.hasSuffix(".cast") else { return false }
        let file = name.dropFirst("recordings/".count)
        return !file.hasPrefix(".")
            && file.utf8.allSatisfy { byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 45
                    || byte == 46 || byte == 95
            }
    }
}
