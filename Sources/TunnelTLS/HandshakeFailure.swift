internal import COpenSSL
internal import Glibc

/// What a failed handshake means for the people who read the error: OpenSSL's reason codes,
/// and the verification failures `TLSConnection` records during the handshake, as sentences
/// that name the peer and the fix.
enum HandshakeFailure {
    /// - Parameter anyQueued: false when OpenSSL failed without queueing anything, which with
    ///   memory BIOs only happens at end of input (`feedEndOfCiphertext`).
    static func error(reason: Int32?, anyQueued: Bool, openSSLErrors: [String], peerKind: PeerKind) -> TLSError {
        let clock = "this machine's clock reads \(UTCTime.format(UTCTime.now()))"
        let (code, message): (TLSError.Code, String)
        switch reason {
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
            (code, message) = (
                .certificateExpired, "the \(peerKind) refused our certificate as expired: renew it (\(clock))"
            )
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
            (code, message) = (
                .untrustedCertificate,
                "the \(peerKind) does not trust the CA that issued our certificate: enroll with the CA this \(peerKind) trusts"
            )
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
            SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
            (code, message) = (
                .peerAlert,
                "the \(peerKind) refused our certificate: by its checks it is not yet valid, not usable for this role, not issued for the name it dialed, or not under its CA pin; its log names the reason"
            )
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            (code, message) = (
                .peerCertificateMissing,
                peerKind == .client
                    ? "the client sent no certificate; every connection needs a node or operator certificate"
                    : "the \(peerKind) requires a client certificate and we sent none; configure our certificate and key"
            )
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, SSL_R_WRONG_VERSION_NUMBER,
            SSL_R_VERSION_TOO_LOW, SSL_R_NO_PROTOCOLS_AVAILABLE:
            (code, message) = (
                .protocolVersion, "the \(peerKind) does not speak TLS 1.3, the only version allowed; upgrade it"
            )
        case SSL_R_NO_APPLICATION_PROTOCOL, SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
            (code, message) = (
                .noCommonApplicationProtocol,
                "the \(peerKind) offers no application protocol we offer (ALPN); its version and ours do not match"
            )
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            (code, message) = (.truncated, "the connection to the \(peerKind) ended without a TLS close_notify")
        case let reason? where (1000...1200).contains(reason):
            // SSL_R_*_ALERT_* reasons are 1000 + the TLS alert number.
            (code, message) = (.peerAlert, "the \(peerKind) aborted the TLS session with alert \(reason - 1000)")
        case nil where !anyQueued:
            (code, message) = (.truncated, "the connection to the \(peerKind) ended without a TLS close_notify")
        default:
            (code, message) = (.openSSL, "TLS with the \(peerKind) failed")
        }
        return TLSError(code, message, openSSLErrors: openSSLErrors)
    }
}

/// Why the peer's certificate chain was refused, with what is needed to explain it.
enum VerificationFailure {
    case x509(code: Int32, depth: Int32, certificate: Certificate?)
    case pinMismatch(pin: [UInt8], presented: [Certificate])
    case identity(TLSError)

    func error(peerKind: PeerKind, trusted: TLSConfiguration.PeerVerification, host: String?, openSSLErrors: [String])
        -> TLSError
    {
        switch self {
        case .identity(let error):
            return TLSError(error.code, "client \(error.message)", openSSLErrors: openSSLErrors)
        case .pinMismatch(let pin, let presented):
            return TLSError(
                .pinMismatch,
                "no certificate in the gateway's chain (\(presented.map(\.displayName).joined(separator: ", "))) has the pinned CA hash sha256:\(Hex.encode(pin)); check the CA hash in the enrollment token and that the gateway sends its CA certificate in its chain",
                openSSLErrors: openSSLErrors
            )
        case .x509(let code, let depth, let certificate):
            let subject =
                certificate.map { (depth == 0 ? "\(peerKind) certificate " : "CA certificate ") + $0.displayName }
                ?? "\(peerKind) certificate"
            let (errorCode, message) = Self.explain(
                code, certificate: certificate, subject: subject, peerKind: peerKind, trusted: trusted, host: host)
            return TLSError(errorCode, message, openSSLErrors: openSSLErrors)
        }
    }

    /// The code and the sentence for an X.509 verification error, naming the certificate and the fix.
    private static func explain(
        _ code: Int32, certificate: Certificate?, subject: String, peerKind: PeerKind,
        trusted: TLSConfiguration.PeerVerification, host: String?
    ) -> (TLSError.Code, String) {
        let clock = "this machine's clock reads \(UTCTime.format(UTCTime.now()))"
        switch code {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            let date = certificate.map { " at \(UTCTime.format($0.notAfter))" } ?? ""
            return (
                .certificateExpired,
                "\(subject) expired\(date); renew it (renewal runs at 2/3 of the lifetime; after expiry re-enroll with a token). If it should still be valid, fix the clock: \(clock)"
            )
        case X509_V_ERR_CERT_NOT_YET_VALID:
            let date = certificate.map { " before \(UTCTime.format($0.notBefore))" } ?? " yet"
            return (
                .certificateNotYetValid,
                "\(subject) is not valid\(date) and \(clock); fix the clock (enable NTP) — a clock at 1970 after a cold boot causes exactly this"
            )
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_SIGNATURE_FAILURE,
            X509_V_ERR_CERT_UNTRUSTED:
            let issuer =
                certificate.flatMap { X509Name.commonName(X509_get_issuer_name($0.pointer)) }.map {
                    " (issued by \"\($0)\")"
                } ?? ""
            return (
                .untrustedCertificate,
                "\(subject)\(issuer) was not signed by \(trustedDescription(trusted)); it belongs to another CA or fleet — enroll it with the right CA"
            )
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            let names =
                certificate.map { $0.subjectAlternativeNames.map(\.description).joined(separator: ", ") } ?? "none"
            return (
                .hostMismatch,
                "\(subject) does not cover the dialed host \"\(host ?? "?")\" (it names: \(names)); dial one of those names or reissue the \(peerKind)'s certificate with this one"
            )
        case X509_V_ERR_INVALID_PURPOSE:
            return (
                .untrustedCertificate,
                "\(subject) is not issued for use as a TLS \(peerKind == .client ? "client" : "server") (extendedKeyUsage); node and operator certificates cannot act as the gateway, and vice versa"
            )
        default:
            return (
                .untrustedCertificate,
                "\(subject) failed verification: \(String(cString: X509_verify_cert_error_string(Int(code))))"
            )
        }
    }

    private static func trustedDescription(_ trusted: TLSConfiguration.PeerVerification) -> String {
        switch trusted {
        case .trustedCAs(let authorities):
            authorities.count == 1
                ? "the \(authorities[0].label)" : "any trusted CA (\(authorities.map(\.label).joined(separator: ", ")))"
        case .pinnedCA(let pin):
            "the pinned CA sha256:\(Hex.encode(pin))"
        }
    }
}
