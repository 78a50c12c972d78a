internal import COpenSSL

/// The one error type of TunnelTLS.
///
/// `message` is written for the person who has to fix the problem: it names the
/// certificate, file or host at fault and what to do about it. `openSSLErrors` keeps the
/// raw OpenSSL error queue for logs and bug reports.
public struct TLSError: OpenSSLReportingError, Sendable, Equatable {
    /// What went wrong, for callers that react differently to different failures.
    public enum Code: Sendable, Equatable {
        /// A certificate's notAfter lies in the past.
        case certificateExpired
        /// A certificate's notBefore lies in the future (often: a wrong local clock).
        case certificateNotYetValid
        /// The peer's chain does not lead to a CA we trust.
        case untrustedCertificate
        /// The gateway's certificate does not name the host that was dialed.
        case hostMismatch
        /// No certificate in the gateway's chain matches the pinned CA hash.
        case pinMismatch
        /// The peer sent no certificate although mutual authentication is required.
        case peerCertificateMissing
        /// The certificate lacks or has several `tunnel://` identity URIs, or a malformed one.
        case invalidIdentity
        /// The peer does not speak TLS 1.3.
        case protocolVersion
        /// Client and server share no ALPN protocol.
        case noCommonApplicationProtocol
        /// The peer sent a fatal alert (it refused us); the message says which one.
        case peerAlert
        /// A private key does not belong to the certificate it is paired with.
        case keyMismatch
        /// PEM or DER input could not be decoded.
        case invalidEncoding
        /// A signature (of a CSR) does not verify.
        case badSignature
        /// Input rejected before reaching OpenSSL (names, validity, parameters).
        case invalidArgument
        /// The peer's ciphertext ended without a TLS close_notify.
        case truncated
        /// A file could not be read or written durably.
        case file
        /// Any other OpenSSL failure; see `openSSLErrors`.
        case openSSL
    }

    public let code: Code
    package let report: OpenSSLReport

    package init(code: Code, report: OpenSSLReport) {
        self.code = code
        self.report = report
    }
}

/// What every error of the C-crypto layer carries besides its code: the sentence for the
/// person who has to act, and the OpenSSL error queue drained with it, oldest first, as
/// OpenSSL formats it (for logs and bug reports).
package struct OpenSSLReport: Sendable, Equatable {
    package let message: String
    package let openSSLErrors: [String]
}

/// An error of the C-crypto layer: `TLSError`, and TunnelAudit's `AuditError`, which builds on
/// this layer. One definition of their message, queue and text, so both read and print alike.
package protocol OpenSSLReportingError: Error, CustomStringConvertible {
    associatedtype Code
    var code: Code { get }
    var report: OpenSSLReport { get }
    init(code: Code, report: OpenSSLReport)
}

extension OpenSSLReportingError {
    public init(_ code: Code, _ message: String, openSSLErrors: [String] = []) {
        self.init(code: code, report: OpenSSLReport(message: message, openSSLErrors: openSSLErrors))
    }

    public var message: String { report.message }
    /// The drained OpenSSL error queue, oldest first, as OpenSSL formats it.
    public var openSSLErrors: [String] { report.openSSLErrors }

    public var description: String {
        openSSLErrors.isEmpty ? message : "\(message) [openssl: \(openSSLErrors.joined(separator: "; "))]"
    }

    /// An error of `code` with `message`, attaching whatever OpenSSL queued.
    package static func openSSL(_ code: Code, _ message: String) -> Self {
        Self(code, message, openSSLErrors: OpenSSLErrorQueue.drain().texts)
    }
}

/// Access to OpenSSL's thread-local error queue.
///
/// OpenSSL reports failures by pushing onto this queue; stale entries from an earlier,
/// already-handled failure would be misattributed to the next call, so every call that
/// may fail is preceded by `clear()` and followed, on failure, by `drain()`. `package`, so
/// TunnelAudit reads the same queue the same way.
package enum OpenSSLErrorQueue {
    package static func clear() {
        ERR_clear_error()
    }

    /// One queued error: the OpenSSL library that raised it and its reason code there.
    package struct Entry {
        let library: Int32
        let reason: Int32
    }

    /// Removes and returns all queued errors, oldest first, with OpenSSL's text for each.
    package static func drain() -> (entries: [Entry], texts: [String]) {
        var entries: [Entry] = []
        var texts: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            entries.append(Entry(library: tunnel_err_get_lib(code), reason: tunnel_err_get_reason(code)))
            ERR_error_string_n(code, &buffer, buffer.count)
            texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return (entries, texts)
    }
}
