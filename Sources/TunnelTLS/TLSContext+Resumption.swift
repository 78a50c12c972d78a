internal import COpenSSL
internal import Glibc

extension TLSConfiguration {
    /// TLS 1.3 session resumption, always with a fresh key exchange (psk_dhe_ke: forward secrecy
    /// is kept). A resumed session skips the certificates and signatures, which are most of a
    /// handshake's CPU on both sides, so a fleet reconnecting after a gateway restart costs a
    /// fraction of a full handshake per node.
    public enum Resumption: Sendable {
        /// Full handshakes only: no tickets issued or accepted, no session kept.
        case off
        /// Servers: seal tickets with these keys for sessions of these ALPN protocols, and resume
        /// them only after checking the session's client certificate again, now, exactly as a full
        /// handshake checks it (chain, dates, identity). Anything else gets a full handshake.
        case tickets(TicketKeyRing, protocols: [String])
        /// Clients: keep the newest ticket of each server name in memory and offer it at each
        /// dial until a newer one replaces it, with what the full handshake verified of the server.
        case keepSessions
    }
}

extension TLSContext {
    /// Turns on what `configuration.resumption` asks for; `configureProtocol` left it all off.
    func configureResumption() throws {
        switch configuration.resumption {
        case .off:
            return
        case .tickets(_, let protocols):
            guard configuration.role == .server,
                protocols.allSatisfy({ configuration.applicationProtocols.contains($0) }),
                !protocols.contains(where: { $0 == configuration.enrollmentProtocol })
            else {
                throw TLSError(
                    .invalidArgument,
                    "session tickets are for servers, for some of their ALPN protocols and never for enrollment")
            }
            SSL_CTX_clear_options(pointer, tunnel_ssl_op_no_ticket())
            // OpenSSL resumes sessions with client certificates only under a session-ID context.
            guard SSL_CTX_set_session_id_context(pointer, Self.sessionContext, UInt32(Self.sessionContext.count)) == 1,
                SSL_CTX_set_num_tickets(pointer, 1) == 1,
                SSL_CTX_set_tlsext_ticket_key_evp_cb(pointer, sealOrOpenTicket) == 1,
                SSL_CTX_set_session_ticket_cb(pointer, ticketSealed, ticketOpened, nil) == 1
            else {
                throw TLSError.openSSL(.openSSL, "could not turn on session tickets")
            }
        case .keepSessions:
            guard configuration.role == .client else {
                throw TLSError(.invalidArgument, "keeping sessions to resume is for clients")
            }
            SSL_CTX_clear_options(pointer, tunnel_ssl_op_no_ticket())
            tunnel_ssl_ctx_set_session_cache_client(pointer)
            SSL_CTX_sess_set_new_cb(pointer, sessionReceived)
        }
    }

    /// Names the sessions a gateway's tickets resume; the ticket keys are what keeps gateways apart.
    static let sessionContext: [UInt8] = Array("tunnel-gateway".utf8)

    /// Servers: whether a session of this ALPN protocol is one to issue tickets for and resume.
    func resumes(applicationProtocol name: UnsafeBufferPointer<UInt8>) -> Bool {
        resumableProtocolsWire.contains { name.elementsEqual($0) }
    }
}

/// AES-256-CBC for sealing tickets, fetched once: an implicit fetch per ticket would search
/// OpenSSL 3's method store every time.
///
/// `@unchecked Sendable`: a fetched `EVP_CIPHER` is immutable and OpenSSL allows it to be used
/// from any thread.
private struct TicketCipher: @unchecked Sendable {
    let pointer: OpaquePointer?
    static let shared = TicketCipher(pointer: EVP_CIPHER_fetch(nil, "AES-256-CBC", nil))
}

/// Seals (`encrypt` 1) or opens (0) a ticket with the ring's keys: 1 with the newest key, 2 with
/// an older one (the client then gets a ticket sealed with the newest), 0 for a key the ring no
/// longer has (full handshake), -1 on failure.
private func sealOrOpenTicket(
    ssl: OpaquePointer?, name: UnsafeMutablePointer<UInt8>?, iv: UnsafeMutablePointer<UInt8>?,
    cipherContext: OpaquePointer?, macContext: OpaquePointer?, encrypt: Int32
) -> Int32 {
    guard let ssl, let name, let iv, let cipherContext, let macContext,
        let ring = TLSConnection.owning(ssl: ssl)?.context.ticketKeys, let cipher = TicketCipher.shared.pointer
    else { return -1 }
    if encrypt == 1 {
        guard let key = ring.sealingKey, RAND_bytes(iv, Int32(EVP_CIPHER_get_iv_length(cipher))) == 1 else {
            return -1
        }
        name.update(from: key.name, count: TicketKeyRing.nameLength)
        guard EVP_EncryptInit_ex(cipherContext, cipher, nil, key.cipherKey, iv) == 1,
            tunnel_ticket_mac_init(macContext, key.macKey, key.macKey.count) == 1
        else { return -1 }
        return 1
    }
    guard let (key, isNewest) = ring.openingKey(named: name) else { return 0 }
    guard EVP_DecryptInit_ex(cipherContext, cipher, nil, key.cipherKey, iv) == 1,
        tunnel_ticket_mac_init(macContext, key.macKey, key.macKey.count) == 1
    else { return -1 }
    return isNewest ? 1 : 2
}

/// Called as a ticket is made: its lifetime is the ring's, cut to what is left of the client
/// certificate's validity, so no ticket outlives the certificate it stands for.
private func ticketSealed(ssl: OpaquePointer?, argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let ssl, let session = SSL_get_session(ssl) else { return 0 }
    var lifetime: Int64 = 0
    if let peer = SSL_SESSION_get0_peer(session) {
        var days: Int32 = 0
        var seconds: Int32 = 0
        if ASN1_TIME_diff(&days, &seconds, nil, X509_get0_notAfter(peer)) == 1 {
            lifetime = max(0, min(TicketKeyRing.ticketLifetime, Int64(days) * 86_400 + Int64(seconds)))
        }
    }
    SSL_SESSION_set_timeout(session, Int(lifetime))
    return 1
}

/// Called with every ticket a client offers, opened or not: a session is resumed only if
/// `admitsResumption` accepts it now; everything else gets a full handshake.
private func ticketOpened(
    ssl: OpaquePointer?, session: OpaquePointer?, keyName: UnsafePointer<UInt8>?, keyNameLength: Int,
    status: SSL_TICKET_STATUS, argument: UnsafeMutableRawPointer?
) -> SSL_TICKET_RETURN {
    guard let ssl, let connection = TLSConnection.owning(ssl: ssl) else { return SSL_TICKET_RETURN_ABORT }
    guard status == SSL_TICKET_SUCCESS || status == SSL_TICKET_SUCCESS_RENEW, let session,
        connection.admitsResumption(of: session)
    else { return SSL_TICKET_RETURN_IGNORE_RENEW }
    return SSL_TICKET_RETURN_USE_RENEW
}

/// Clients: each ticket the server sends is kept (copied) for the next dial to the same name;
/// the reference OpenSSL hands over stays OpenSSL's (hence 0: it frees it).
private func sessionReceived(ssl: OpaquePointer?, session: OpaquePointer?) -> Int32 {
    guard let ssl, let session, let connection = TLSConnection.owning(ssl: ssl) else { return 0 }
    connection.keepForResumption(session)
    return 0
}

/// What a client keeps to resume with: the session (ticket and secrets) and what the full
/// handshake verified of the server, which a resumed handshake does not show again. In memory
/// only: a restarted client makes one full handshake.
///
/// `@unchecked Sendable`: the entries are only touched under `lock`; an `SSL_SESSION` may be
/// handed between threads.
final class SessionCache: @unchecked Sendable {
    final class Entry {
        let session: OpaquePointer
        let peerCertificate: Certificate
        let verifiedBy: TrustedCA

        init(session: OpaquePointer, peerCertificate: Certificate, verifiedBy: TrustedCA) {
            self.session = session
            self.peerCertificate = peerCertificate
            self.verifiedBy = verifiedBy
        }

        deinit { SSL_SESSION_free(session) }
    }

    /// Server names kept at most: a client dials one gateway or a few replicas.
    static let capacity = 16
    private var entries: [String: Entry] = [:]
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    /// Keeps `entry` for `serverName`, in place of an older one.
    func keep(_ entry: Entry, for serverName: String) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if entries[serverName] == nil, entries.count >= Self.capacity, let any = entries.keys.first {
            entries[any] = nil
        }
        entries[serverName] = entry
    }

    /// The session kept for `serverName`.
    func entry(for serverName: String) -> Entry? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return entries[serverName]
    }
}
