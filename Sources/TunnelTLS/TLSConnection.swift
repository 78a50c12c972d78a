internal import COpenSSL
internal import Glibc

/// One TLS session over memory BIOs (sans-IO): ciphertext in from the socket, plaintext out
/// to the application, and back. The one Swift owner of its `SSL` and both BIOs.
///
/// Loop-confined and deliberately not `Sendable`: create, use and drop it on the thread that
/// owns the socket.
///
/// Driving it: after every socket read, `feedCiphertext`; then `advanceHandshake()` until it is
/// `.done` (or `readPlaintext`, which advances it too); after anything, `drainCiphertext` and
/// send the result, including after a failure — that is how the alert reaches the peer. The
/// handshake timeout (10 s) is the caller's: this type has no clock.
///
/// With TLS 1.3 a client finishes its handshake before the server has checked the client
/// certificate; a refusal then surfaces as an error from the client's next `readPlaintext`.
public final class TLSConnection {
    public enum HandshakeState: Sendable {
        case inProgress
        case done
        case failed(TLSError)
    }

    public enum ReadResult: Sendable, Equatable {
        /// This many plaintext bytes were written to the start of the buffer.
        case bytes(Int)
        /// Nothing decrypted yet; feed more ciphertext.
        case wouldBlock
        /// The peer sent close_notify; no more plaintext will come.
        case closed
    }

    /// Suggested plaintext read buffer: four full TLS records per call amortises the call overhead.
    public static let recommendedReadBufferSize = 64 * 1024

    // Internal rather than private where TLSConnection+Verification.swift needs it.
    let context: TLSContext
    let ssl: OpaquePointer
    /// Ciphertext received from the peer, waiting for OpenSSL. Owned by `ssl`.
    let networkInput: OpaquePointer
    /// Ciphertext produced by OpenSSL, waiting for the socket: a sink (`tunnel_sink_new`) the
    /// socket writes from in place. Owned by `ssl`.
    let networkOutput: OpaquePointer
    let serverHost: String?
    /// Clients: sessions from this connection's tickets may be kept (`TLSContext.sessions`);
    /// never when certificates were checked against another clock than this machine's.
    let keepsSessions: Bool

    public private(set) var handshakeState: HandshakeState = .inProgress
    /// The negotiated ALPN protocol, once the handshake is done.
    public private(set) var applicationProtocol: String?
    /// The verified peer certificate (leaf), once the handshake is done.
    public internal(set) var peerCertificate: Certificate?
    /// Servers only: the client's identity from its certificate's single `tunnel://` URI, once the
    /// handshake is done. Check its role against `applicationProtocol` and `verifiedBy`.
    public internal(set) var peerIdentity: TunnelIdentity?
    /// The negotiated TLS 1.3 cipher suite (for logs), once the handshake is done.
    public private(set) var cipherSuite: String?
    /// The trusted CA at the root of the peer's verified chain, once the handshake is done.
    /// In CA-pin mode its kind is `.pinned`.
    public internal(set) var verifiedBy: TrustedCA?
    /// The handshake resumed a session (a ticket) instead of exchanging certificates; what was
    /// verified then is above as for a full handshake (`TLSConnection+Resumption.swift`).
    public internal(set) var isResumed = false
    /// Servers: the client certificate of the offered ticket's session and its CA, checked again
    /// when the ticket was opened (`admitsResumption`).
    var resumedPeer: (certificate: Certificate, verifiedBy: TrustedCA)?
    /// Clients: the kept session offered in this handshake.
    var offeredSession: SessionCache.Entry?

    /// Servers with an enrollment protocol: the client offered only that protocol, so it may
    /// present no certificate or an expired one (`TLSConfiguration.enrollmentProtocol`).
    public internal(set) var isEnrollment = false
    /// The server refused the ClientHello because it offered no ALPN at all.
    var refusedForNoALPN = false
    /// Servers: the first ALPN names in the ClientHello, for `holdAtClientHello`.
    var offeredProtocols: [String] = []
    static let heldOfferLimit = 8

    /// Whether `holdAtClientHello` suspends the handshake now.
    func holdsClientHello() -> Bool {
        holdAtClientHello?(offeredProtocols) ?? false
    }
    /// Enrollment connections only: the client's certificate verified except that it expired.
    public internal(set) var peerCertificateExpired = false
    /// Servers: asked with the ALPN names the client offered once its ClientHello is in, before
    /// any key exchange or signature; true suspends the handshake there, cheaply, until
    /// `advanceHandshake` is called again (then it is asked again). How a gateway puts operators
    /// ahead of a reconnect storm.
    public var holdAtClientHello: (([String]) -> Bool)?
    /// Servers: the ClientHello was let through (`holdAtClientHello` said no, or there is none).
    /// It is not asked again, not even for a second ClientHello after a HelloRetryRequest.
    public internal(set) var clientHelloAdmitted = false
    /// Servers whose owner runs the handshake's costly steps on another thread (a
    /// `HandshakeWorker`): the handshake stops once more right after its ClientHello is admitted,
    /// before the key exchange and the signature, so that `holdAtClientHello` is asked on the
    /// owner's thread and everything after it runs where the owner takes the handshake next.
    public var stopsAfterAdmission = false

    /// Which time certificates are checked against.
    public enum CertificateTime: Sendable, Equatable {
        /// This machine's clock.
        case systemClock
        /// This Unix time: a client whose clock is known to be wrong checks at the gateway's time.
        case fixed(Int64)
        /// No date checks at all, only signatures and names: for a client with a wrong clock to
        /// reach the gateway once and learn its time. Never for servers.
        case unchecked
    }

    /// The first certificate-verification failure of this handshake, for the error message.
    var verificationFailure: VerificationFailure?
    /// The one-element trust stack used in CA-pin mode; OpenSSL borrows it, so we free it.
    var pinnedTrustStack: OpaquePointer?
    /// A failure after the handshake; every later call reports it again.
    private var terminalError: TLSError?
    private var receivedCloseNotify = false

    /// - Parameter serverHost: clients only: the DNS name or IP address that was dialed. It is
    ///   sent as SNI (names only) and the gateway certificate must carry it as a DNS or IP SAN.
    /// - Parameter certificateTime: clients only; see `CertificateTime`.
    public init(context: TLSContext, serverHost: String? = nil, certificateTime: CertificateTime = .systemClock)
        throws(TLSError)
    {
        let isClient = context.configuration.role == .client
        guard isClient == (serverHost != nil) else {
            throw TLSError(
                .invalidArgument,
                isClient ? "a client connection needs the host it dialed" : "a server connection takes no server host")
        }
        guard isClient || certificateTime == .systemClock else {
            throw TLSError(.invalidArgument, "a server checks certificates against its own clock")
        }
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw TLSError.openSSL(.openSSL, "could not create an OpenSSL connection")
        }
        guard let input = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.openSSL(.openSSL, "could not allocate a memory BIO")
        }
        guard let output = tunnel_sink_new() else {
            BIO_free(input)
            SSL_free(ssl)
            throw TLSError.openSSL(.openSSL, "could not allocate a ciphertext sink BIO")
        }
        // An empty input BIO means "no data yet" (retry), not end of stream; see `feedEndOfCiphertext`.
        tunnel_bio_set_mem_eof_return(input, -1)
        SSL_set_bio(ssl, input, output)
        self.context = context
        self.ssl = ssl
        self.networkInput = input
        self.networkOutput = output
        self.serverHost = serverHost
        keepsSessions = isClient && certificateTime == .systemClock && context.sessions != nil
        SSL_set_ex_data(ssl, Self.appDataIndex, Unmanaged.passUnretained(self).toOpaque())
        switch certificateTime {
        case .systemClock: break
        case .fixed(let time): X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl), time_t(time))
        case .unchecked: X509_VERIFY_PARAM_set_flags(SSL_get0_param(ssl), UInt(X509_V_FLAG_NO_CHECK_TIME))
        }
        if let serverHost {
            SSL_set_connect_state(ssl)
            try configureServerHost(serverHost)
            offerKeptSession(to: serverHost)
        } else {
            SSL_set_accept_state(ssl)
        }
    }

    deinit {
        SSL_free(ssl) // frees both BIOs
        if let pinnedTrustStack {
            tunnel_sk_X509_free(pinnedTrustStack)
        }
    }

    // MARK: Driving the handshake

    /// Runs the handshake as far as the fed ciphertext allows. Idempotent once done or failed.
    @discardableResult
    public func advanceHandshake() -> HandshakeState {
        guard case .inProgress = handshakeState else { return handshakeState }
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            handshakeState = completeHandshake()
        } else if let error = error(for: result) {
            handshakeState = .failed(error)
        }
        return handshakeState
    }

    // MARK: Plaintext side

    /// Decrypts as much as fits in `buffer` (several records per call). Advances the handshake
    /// first if needed. Throws the handshake error, a fatal alert from the peer, or `.truncated`.
    public func readPlaintext(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> ReadResult {
        guard try handshakeIsDone() else { return .wouldBlock }
        if let terminalError { throw terminalError }
        if receivedCloseNotify { return .closed }
        var total = 0
        // Successful reads queue no errors, so one clear serves the whole loop.
        OpenSSLErrorQueue.clear()
        while total < buffer.count {
            var read = 0
            let result = SSL_read_ex(ssl, buffer.baseAddress! + total, buffer.count - total, &read)
            if result == 1 {
                total += read
                continue
            }
            if SSL_get_error(ssl, result) == SSL_ERROR_ZERO_RETURN {
                receivedCloseNotify = true
            } else if let error = error(for: result) {
                terminalError = error
            }
            break
        }
        // Bytes decrypted before an error or close_notify were authenticated: deliver them first.
        if total > 0 { return .bytes(total) }
        if let terminalError { throw terminalError }
        return receivedCloseNotify ? .closed : .wouldBlock
    }

    /// Encrypts plaintext straight from the caller's memory and returns how many bytes were taken:
    /// all of them once the handshake is done (the output BIO grows), 0 while it is in progress.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) throws(TLSError) -> Int {
        guard try handshakeIsDone() else { return 0 }
        if let terminalError { throw terminalError }
        guard !bytes.isEmpty else { return 0 }
        var written = 0
        OpenSSLErrorQueue.clear()
        let result = SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written)
        if result == 1 { return written }
        if let error = error(for: result) {
            terminalError = error
            throw error
        }
        return 0
    }

    public func writePlaintext(_ bytes: [UInt8]) throws(TLSError) -> Int {
        // `withUnsafeBytes` rethrows untyped; the result carries the typed error out.
        try bytes.withUnsafeBytes { buffer in Result { () throws(TLSError) in try writePlaintext(buffer) } }.get()
    }

    /// Queues close_notify (drain and send it afterwards). Later writes fail.
    public func shutdown() {
        guard case .done = handshakeState else { return }
        OpenSSLErrorQueue.clear()
        // Returns 0 ("sent, peer's not yet seen"), 1, or an error for an already broken
        // connection; all mean the same to us: nothing more to send but what is queued.
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    /// True if this session could be resumed: never unless the context turned resumption on.
    /// Exposed for tests that check no NewSessionTicket was accepted.
    var sessionIsResumable: Bool {
        guard let session = SSL_get_session(ssl) else { return false }
        return SSL_SESSION_is_resumable(session) == 1
    }

    // MARK: Internals

    /// Slot 0 of the SSL ex-data is the conventional "app data" slot (SSL_set_app_data).
    private static let appDataIndex: Int32 = 0

    /// Recovers the Swift owner inside an OpenSSL callback.
    static func owning(ssl: OpaquePointer) -> TLSConnection? {
        SSL_get_ex_data(ssl, appDataIndex).map { Unmanaged<TLSConnection>.fromOpaque($0).takeUnretainedValue() }
    }

    static func owning(storeContext: OpaquePointer) -> TLSConnection? {
        guard let ssl = X509_STORE_CTX_get_ex_data(storeContext, SSL_get_ex_data_X509_STORE_CTX_idx()) else {
            return nil
        }
        return owning(ssl: OpaquePointer(ssl))
    }

    private func configureServerHost(_ host: String) throws(TLSError) {
        let parameters = SSL_get0_param(ssl)
        X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        let configured: Bool
        if Self.isIPAddress(host) {
            // RFC 6066 forbids IP literals in SNI; the address is checked against IP SANs instead.
            configured = X509_VERIFY_PARAM_set1_ip_asc(parameters, host) == 1
        } else {
            configured =
                X509_VERIFY_PARAM_set1_host(parameters, host, 0) == 1
                && tunnel_ssl_set_tlsext_host_name(ssl, host) == 1
        }
        guard configured else {
            throw TLSError.openSSL(
                .invalidArgument, "\"\(host)\" is not a usable gateway host name or IP address")
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var storage = in6_addr()
        return inet_pton(AF_INET, host, &storage) == 1 || inet_pton(AF_INET6, host, &storage) == 1
    }

    /// Checks the handshake state, advancing it if still in progress.
    private func handshakeIsDone() throws(TLSError) -> Bool {
        switch advanceHandshake() {
        case .inProgress: return false
        case .done: return true
        case .failed(let error): throw error
        }
    }

    /// Records what was verified once OpenSSL reports the handshake finished.
    private func completeHandshake() -> HandshakeState {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else {
            return .failed(
                TLSError(
                    .noCommonApplicationProtocol,
                    "the \(peerKind) selected no application protocol (ALPN); it is too old or not the server meant"))
        }
        applicationProtocol = String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
        cipherSuite = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) }
        if SSL_session_reused(ssl) == 1 { return completeResumption() }

        if isEnrollment, SSL_get_verify_result(ssl) == X509_V_OK, SSL_get0_peer_certificate(ssl) == nil {
            return .done
        }
        guard SSL_get_verify_result(ssl) == X509_V_OK,
            let peer = SSL_get0_peer_certificate(ssl),
            let chain = SSL_get0_verified_chain(ssl),
            tunnel_sk_X509_num(chain) > 0,
            let anchorPointer = tunnel_sk_X509_value(chain, tunnel_sk_X509_num(chain) - 1)
        else {
            return .failed(TLSError(.peerCertificateMissing, "the \(peerKind) presented no verified certificate"))
        }
        do {
            peerCertificate = try Certificate.retaining(peer)
            let anchor = try Certificate.retaining(anchorPointer)
            if case .pinnedCA = context.configuration.peerVerification {
                verifiedBy = TrustedCA(.pinned, certificate: anchor)
            } else if let trusted = context.trustedCA(matching: anchor) {
                verifiedBy = trusted
            } else {
                return .failed(
                    TLSError(
                        .untrustedCertificate,
                        "the \(peerKind)'s chain ends at \(anchor.displayName), which is not a configured CA"))
            }
        } catch let error as TLSError {
            return .failed(error)
        } catch {
            return .failed(TLSError(.openSSL, "\(error)"))
        }
        return .done
    }

    var peerKind: PeerKind {
        context.configuration.peerKind
    }

    /// Maps an OpenSSL call result to an error; nil for WANT_READ / WANT_WRITE ("not yet").
    private func error(for result: Int32) -> TLSError? {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_CLIENT_HELLO_CB:
            return nil
        case SSL_ERROR_ZERO_RETURN:
            return TLSError(.truncated, "the \(peerKind) closed the TLS session during the handshake")
        default:
            let (entries, texts) = OpenSSLErrorQueue.drain()
            if refusedForNoALPN {
                return TLSError(
                    .noCommonApplicationProtocol,
                    "the client offered no application protocol (ALPN); it is not a tunnel client")
            }
            if let verificationFailure {
                return verificationFailure.error(
                    peerKind: peerKind, trusted: context.configuration.peerVerification, host: serverHost,
                    openSSLErrors: texts)
            }
            let reason = entries.first { $0.library == ERR_LIB_SSL }?.reason
            return HandshakeFailure.error(
                reason: reason, anyQueued: !entries.isEmpty, openSSLErrors: texts, peerKind: peerKind)
        }
    }
}

/// Loop-confined: OpenSSL's `SSL` must not be used from two threads at once.
@available(*, unavailable)
extension TLSConnection: Sendable {}
