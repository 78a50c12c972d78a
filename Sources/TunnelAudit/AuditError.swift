internal import TunnelTLS

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
    /// The sentence and the drained OpenSSL error queue, kept and printed the way TunnelTLS
    /// keeps its own (`OpenSSLReportingError` gives `message`, `openSSLErrors`, `description`).
    let report: OpenSSLReport
}

/// Built on TunnelTLS's error layer: `AuditError.openSSL` reads TunnelTLS's `OpenSSLErrorQueue`,
/// one reader of it for the whole program.
extension AuditError: OpenSSLReportingError {
    /// The same failure, reported by a TunnelTLS primitive (a durable write, a PEM codec).
    init(_ code: Code, _ error: TLSError) {
        self.init(code: code, report: error.report)
    }
}

/// TunnelTLS's reusable SHA-256 context, its one failure (OpenSSL offers no SHA-256) as an
/// `AuditError`.
func auditHasher() throws(AuditError) -> SHA256Hasher {
    do { return try SHA256Hasher() } catch { throw AuditError(.crypto, error) }
}
