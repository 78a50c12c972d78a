internal import COpenSSL
internal import Glibc

/// Session resumption (`TLSConfiguration.Resumption`), called from OpenSSL's callbacks during
/// `SSL_do_handshake` and from `completeHandshake`.
extension TLSConnection {
    /// Servers, as a ticket is opened: resume its session only if it is of a resumable protocol,
    /// not an enrollment, and its client certificate verifies again now against the trusted CAs,
    /// with the same parameters and callback as in a full handshake (dates, strict checks, the one
    /// tunnel identity). A ticket is not a credential: who the client is comes from this check,
    /// and the application then admits it exactly as after a full handshake.
    func admitsResumption(of session: OpaquePointer) -> Bool {
        var alpn: UnsafePointer<UInt8>?
        var alpnLength = 0
        SSL_SESSION_get0_alpn_selected(session, &alpn, &alpnLength)
        guard !isEnrollment, let alpn,
            context.resumes(applicationProtocol: UnsafeBufferPointer(start: alpn, count: alpnLength)),
            let peer = SSL_SESSION_get0_peer(session), let verified = verifyAgain(peer)
        else {
            // Nothing from a refused ticket may leak into the full handshake that follows.
            peerIdentity = nil
            verificationFailure = nil
            return false
        }
        resumedPeer = verified
        return true
    }

    /// Builds and checks the chain of `leaf` as `SSL_do_handshake` does for a presented one.
    private func verifyAgain(_ leaf: OpaquePointer) -> (certificate: Certificate, verifiedBy: TrustedCA)? {
        guard let storeContext = X509_STORE_CTX_new() else { return nil }
        defer { X509_STORE_CTX_free(storeContext) }
        guard X509_STORE_CTX_init(storeContext, SSL_CTX_get_cert_store(context.pointer), leaf, nil) == 1 else {
            return nil
        }
        X509_STORE_CTX_set_default(storeContext, "ssl_client")
        let parameters = X509_STORE_CTX_get0_param(storeContext)
        X509_VERIFY_PARAM_set1(parameters, SSL_get0_param(ssl))
        X509_VERIFY_PARAM_set_auth_level(parameters, SSL_get_security_level(ssl))
        X509_STORE_CTX_set_ex_data(storeContext, SSL_get_ex_data_X509_STORE_CTX_idx(), UnsafeMutableRawPointer(ssl))
        X509_STORE_CTX_set_verify_cb(storeContext, recordingVerifyCallback)
        guard X509_verify_cert(storeContext) == 1, peerIdentity != nil,
            let chain = X509_STORE_CTX_get0_chain(storeContext), tunnel_sk_X509_num(chain) > 0,
            let anchor = tunnel_sk_X509_value(chain, tunnel_sk_X509_num(chain) - 1),
            let anchorCertificate = try? Certificate.retaining(anchor),
            let trusted = context.trustedCA(matching: anchorCertificate),
            let certificate = try? Certificate.retaining(leaf)
        else { return nil }
        return (certificate, trusted)
    }

    /// Clients, as a ticket arrives: keep a copy of its session for the next dial, with what the
    /// full handshake verified of the server. A copy, because OpenSSL marks a connection's own
    /// session not resumable when that connection dies badly, as every one does when its
    /// gateway is killed: the very moment the ticket is needed.
    func keepForResumption(_ session: OpaquePointer) {
        guard keepsSessions, let serverHost, let peerCertificate, let verifiedBy, let sessions = context.sessions,
            SSL_SESSION_is_resumable(session) == 1, let copy = SSL_SESSION_dup(session)
        else { return }
        sessions.keep(
            SessionCache.Entry(session: copy, peerCertificate: peerCertificate, verifiedBy: verifiedBy),
            for: serverHost)
    }

    /// Clients: offers (a copy of) the session kept for `serverName`, if any. It stays kept
    /// until a newer ticket replaces it, so a dial refused before its handshake costs nothing.
    func offerKeptSession(to serverName: String) {
        guard keepsSessions, let entry = context.sessions?.entry(for: serverName),
            let copy = SSL_SESSION_dup(entry.session)
        else { return }
        defer { SSL_SESSION_free(copy) }
        guard SSL_set_session(ssl, copy) == 1 else { return }
        offeredSession = entry
    }

    /// The end of a resumed handshake: the peer is what was verified when the session began
    /// (the server checked it again as the ticket was opened; the client kept it itself).
    func completeResumption() -> HandshakeState {
        let verified = resumedPeer ?? offeredSession.map { ($0.peerCertificate, $0.verifiedBy) }
        guard let verified else {
            return .failed(
                TLSError(
                    .peerCertificateMissing, "the \(peerKind) resumed a session whose certificate was not verified"))
        }
        (peerCertificate, verifiedBy, isResumed) = (verified.0, verified.1, true)
        return .done
    }
}
