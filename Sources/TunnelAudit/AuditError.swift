internal import COpenSSL

/// The one error type of TunnelAudit.
///
/// `message` is written for the operator who has to act: it names the file and the cause
/// (for I/O errors, the system's own text such as "No space left on device").
public struct AuditError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A file or directory operation failed: disk full, I/O error, permissions.
        case io
        /// The caller passed something the format cannot carry: a reserved record type or
        /// field name, a malformed name, a record over the size limit, a non-finite double.
        case invalidArgument
        /// An earlier write failed; the log refuses appends until `AuditLog.retry(now:)` succeeds.
        case failed
        /// The log was closed with `AuditLog.close(now:)`.
        case closed
        /// The existing log is damaged in a way a crash cannot explain (not just a torn tail),
        /// so recovery refuses to cut anything off and leaves the files for inspection.
        case damaged
        /// A key file is missing, unreadable, not Ed25519, or does not match the log.
        case key
        /// Any other OpenSSL failure; see `openSSLErrors`.
        case crypto
    }

    public let code: Code
    public let message: String
    /// The drained OpenSSL error queue, oldest first, for logs and bug reports.
    public let openSSLErrors: [String]

    public init(_ code: Code, _ message: String, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        openSSLErrors.isEmpty ? message : "\(message) [openssl: \(openSSLErrors.joined(separator: "; "))]"
    }
}

/// OpenSSL's thread-local error queue.
///
/// Stale entries from an earlier, already-handled failure would be blamed on the next call,
/// so every fallible call is preceded by `clear()` and a failure drains the queue into the error.
enum OpenSSLErrors {
    static func clear() {
        ERR_clear_error()
    }

    static func drain() -> [String] {
        var texts: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &buffer, buffer.count)
            texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return texts
    }

    static func error(_ code: AuditError.Code, _ message: String) -> AuditError {
        AuditError(code, message, openSSLErrors: drain())
    }
}
