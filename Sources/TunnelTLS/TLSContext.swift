internal import COpenSSL
internal import Glibc

/// A certificate chain and the private key it certifies: what one side presents in the handshake.
public struct TLSIdentity: Sendable {
    /// Leaf first, then any intermediates. The gateway also appends its CA certificate so
    /// that clients in CA-pin mode can find the pinned certificate in the chain.
    public let chain: [Certificate]
    public let key: PrivateKey
    /// Where the chain and key came from; used only to name them in error messages.
    public let certificatePath: String
    public let keyPath: String

    public init(
        chain: [Certificate], key: PrivateKey, certificatePath: String = "certificate", keyPath: String = "private key"
    ) {
        self.chain = chain
        self.key = key
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    /// Reads a PEM chain file and a PEM key file.
    public static func load(certificatePath: String, keyPath: String) throws -> TLSIdentity {
        TLSIdentity(
            chain: try Certificate.chainFromPEM(DurableFile.read(path: certificatePath), source: certificatePath),
            key: try PrivateKey(pem: DurableFile.read(path: keyPath), source: keyPath),
            certificatePath: certificatePath,
            keyPath: keyPath
        )
    }
}

/// Which CA a trusted certificate is. The gateway decides a peer's role by the kind that
/// verified it, and messages name the kind by its label.
public enum CAKind: String, Sendable, Equatable, CaseIterable {
    case node = "node CA"
    case `operator` = "operator CA"
    case gateway = "gateway CA"
    case kubernetesAPI = "Kubernetes API CA"
    /// The CA a client matched by its pin (`TLSConfiguration.PeerVerification.caPin`).
    case pinned = "pinned CA"

    /// For messages: "node CA".
    public var label: String { rawValue }
}

/// A CA trusted to vouch for peers, and which kind it is (reported as the peer's `verifiedBy`).
public struct TrustedCA: Sendable {
    public let kind: CAKind
    public let certificate: Certificate

    public init(_ kind: CAKind, certificate: Certificate) {
        self.kind = kind
        self.certificate = certificate
    }

    public var label: String { kind.label }
}

/// What a TLS peer is, as handshake errors name it.
public enum PeerKind: String, Sendable, Equatable, CustomStringConvertible {
    /// What a server calls whoever dials it.
    case client
    case gateway
    case kubernetesAPIServer = "Kubernetes API server"

    /// For messages: "the \(kind)".
    public var description: String { rawValue }
}

/// Everything a `TLSContext` is built from.
public struct TLSConfiguration: Sendable {
    public enum Role: Sendable, Equatable {
        case server
        case client
    }

    /// How the peer's certificate chain is checked.
    public enum PeerVerification: Sendable {
        /// The chain must lead to one of these CAs. The gateway lists both the node CA and the
        /// operator CA and learns from `TLSConnection.verifiedBy` which one it was.
        case trustedCAs([TrustedCA])
        /// Client only, for token enrollment before the node has the CA: some certificate in the
        /// gateway's chain must have this SHA-256 fingerprint, and the chain must verify up to it.
        case pinnedCA(sha256: [UInt8])
    }

    public let role: Role
    /// Required for servers. A client without one can only complete handshakes with a server that
    /// does not demand client certificates, which no `TLSContext` server does.
    public let identity: TLSIdentity?
    public let peerVerification: PeerVerification
    /// ALPN protocols: for a server in preference order, for a client the ones it offers.
    public let applicationProtocols: [String]
    /// Servers only: the one ALPN protocol (one of `applicationProtocols`) for enrolling nodes.
    /// A client offering it and nothing else may present no certificate (a new node with a
    /// token) or an expired one from a trusted CA (a node back from a long power-off, proving
    /// its key); `TLSConnection.isEnrollment` tells the application, which must then grant
    /// nothing but enrollment. Every other connection needs a valid certificate, checked inside
    /// the handshake.
    public let enrollmentProtocol: String?
    /// What the peer is, as handshake errors name it: the gateway for a client by default, a
    /// client for a server; a node dialing its Kubernetes API server says so.
    public var peerKind: PeerKind
    /// TLS 1.3 session resumption (`TLSContext+Resumption.swift`); off unless asked for.
    public var resumption: Resumption = .off

    public init(
        role: Role, identity: TLSIdentity?, peerVerification: PeerVerification, applicationProtocols: [String],
        enrollmentProtocol: String? = nil
    ) {
        peerKind = role == .server ? .client : .gateway
        self.role = role
        self.identity = identity
        self.peerVerification = peerVerification
        self.applicationProtocols = applicationProtocols
        self.enrollmentProtocol = enrollmentProtocol
    }
}

/// The one Swift owner of an `SSL_CTX`: TLS 1.3 only, mutual authentication, ALPN required,
/// session resumption only where the configuration asks for it. Build one per role and
/// configuration and share it between connections.
///
/// `@unchecked Sendable`: the `SSL_CTX` is fully configured in `init` and never changed
/// afterwards; OpenSSL allows `SSL_new` on one `SSL_CTX` from several threads.
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    let configuration: TLSConfiguration
    /// ALPN protocols in wire form (length-prefixed), the form OpenSSL hands to the callback.
    let applicationProtocolsWire: [[UInt8]]
    /// `configuration.enrollmentProtocol` in wire form (without its length byte).
    let enrollmentProtocolWire: [UInt8]?
    /// Servers with resumption: the keys tickets are sealed with, and the ALPN protocols whose
    /// sessions get tickets (wire form, without length bytes).
    let ticketKeys: TicketKeyRing?
    let resumableProtocolsWire: [[UInt8]]
    /// Clients with resumption: the session each server name gave last.
    let sessions: SessionCache?

    /// Longest ALPN protocol name the wire format allows (one length byte).
    public static let maximumApplicationProtocolLength = 255

    public init(configuration: TLSConfiguration) throws {
        let protocols = configuration.applicationProtocols.map { Array($0.utf8) }
        guard !protocols.isEmpty,
            protocols.allSatisfy({ (1...Self.maximumApplicationProtocolLength).contains($0.count) })
        else {
            throw TLSError(
                .invalidArgument,
                "ALPN needs at least one protocol name of 1–255 bytes (got \(configuration.applicationProtocols))")
        }
        if configuration.role == .server, configuration.identity == nil {
            throw TLSError(.invalidArgument, "a TLS server needs a certificate and key")
        }
        if configuration.role == .server, case .pinnedCA = configuration.peerVerification {
            throw TLSError(
                .invalidArgument,
                "CA pinning is for clients during enrollment; a server must verify clients against its trusted CAs")
        }
        if let enrollment = configuration.enrollmentProtocol,
            configuration.role != .server || !configuration.applicationProtocols.contains(enrollment)
        {
            throw TLSError(
                .invalidArgument,
                "an enrollment protocol is for servers and must be one of their ALPN protocols (got \(enrollment))")
        }
        OpenSSLErrorQueue.clear()
        guard let context = SSL_CTX_new(configuration.role == .server ? TLS_server_method() : TLS_client_method())
        else {
            throw TLSError.openSSL(.openSSL, "could not create an OpenSSL context")
        }
        pointer = context
        self.configuration = configuration
        applicationProtocolsWire = protocols
        enrollmentProtocolWire = configuration.enrollmentProtocol.map { Array($0.utf8) }
        switch configuration.resumption {
        case .off:
            (ticketKeys, resumableProtocolsWire, sessions) = (nil, [], nil)
        case .tickets(let ring, let resumable):
            (ticketKeys, resumableProtocolsWire, sessions) = (ring, resumable.map { Array($0.utf8) }, nil)
        case .keepSessions:
            (ticketKeys, resumableProtocolsWire, sessions) = (nil, [], SessionCache())
        }
        try configureProtocol()
        try configureResumption()
        if let identity = configuration.identity {
            try configureIdentity(identity)
        }
        try configureVerification(protocols)
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// TLS 1.3 cipher suites, most preferred first. AES-128-GCM leads because it is the cheapest
    /// per byte with AES instructions (the gateway decrypts and re-encrypts every relayed byte);
    /// ChaCha20 follows for edge CPUs without them (see `configureProtocol`).
    public static let cipherSuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

    /// Key exchange groups, most preferred first, tried in order until this OpenSSL accepts one
    /// list: a hybrid post-quantum group where OpenSSL offers it (3.5 and later), else X25519 and
    /// P-256 alone. Never finite-field groups: an ffdhe8192 share costs a server about 200 times
    /// an X25519 one, and a client can replay one precomputed share to make it pay that at will.
    static let keyExchangeGroupLists = ["X25519MLKEM768:X25519:P-256", "X25519:P-256"]

    /// TLS 1.3 only, and no tickets nor session cache unless `configureResumption` turns them on.
    private func configureProtocol() throws {
        guard tunnel_ssl_ctx_set_min_proto_version(pointer, TLS1_3_VERSION) == 1,
            tunnel_ssl_ctx_set_max_proto_version(pointer, TLS1_3_VERSION) == 1,
            SSL_CTX_set_ciphersuites(pointer, Self.cipherSuites) == 1,
            SSL_CTX_set_num_tickets(pointer, 0) == 1
        else {
            throw TLSError.openSSL(.openSSL, "could not restrict the context to TLS 1.3 without tickets")
        }
        // The server's order wins, except that a client listing ChaCha20 first (one without AES
        // instructions) gets ChaCha20.
        SSL_CTX_set_options(
            pointer,
            tunnel_ssl_op_no_ticket() | tunnel_ssl_op_no_renegotiation() | tunnel_ssl_op_no_compression()
                | tunnel_ssl_op_cipher_server_preference() | tunnel_ssl_op_prioritize_chacha()
        )
        tunnel_ssl_ctx_set_session_cache_off(pointer)
        guard Self.keyExchangeGroupLists.contains(where: { tunnel_ssl_ctx_set1_groups_list(pointer, $0) == 1 }) else {
            throw TLSError.openSSL(.openSSL, "could not limit key exchange to X25519 and P-256")
        }
        OpenSSLErrorQueue.clear()
        // Swift arrays may move between a WANT_* and the retry; partial writes let a large
        // plaintext write report progress instead of all-or-nothing. Released buffers: each
        // connection's 17 KiB record buffers each way go back once empty, so an idle node costs
        // the gateway none of its 33 KiB (a malloc per record when busy is cheap beside AES-GCM).
        tunnel_ssl_ctx_set_mode(
            pointer,
            Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
    }

    private func configureIdentity(_ identity: TLSIdentity) throws {
        guard let leaf = identity.chain.first else {
            throw TLSError(.invalidArgument, "\(identity.certificatePath) contains no certificate")
        }
        guard SSL_CTX_use_certificate(pointer, leaf.pointer) == 1 else {
            throw TLSError.openSSL(
                .invalidArgument, "OpenSSL refused certificate \(identity.certificatePath) (\(leaf.displayName))")
        }
        for intermediate in identity.chain.dropFirst() {
            guard tunnel_ssl_ctx_add1_chain_cert(pointer, intermediate.pointer) == 1 else {
                throw TLSError.openSSL(
                    .invalidArgument,
                    "OpenSSL refused chain certificate \(intermediate.displayName) from \(identity.certificatePath)")
            }
        }
        guard SSL_CTX_use_PrivateKey(pointer, identity.key.pointer) == 1, SSL_CTX_check_private_key(pointer) == 1 else {
            throw TLSError.openSSL(
                .keyMismatch,
                "private key \(identity.keyPath) does not match certificate \(identity.certificatePath) (\(leaf.displayName)); they must come from the same enrollment — re-enroll or restore the matching pair"
            )
        }
    }

    private func configureVerification(_ protocols: [[UInt8]]) throws {
        let mode = configuration.role == .server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER
        SSL_CTX_set_verify(pointer, mode, recordingVerifyCallback)
        // Strict RFC 5280 checks: we issue every certificate ourselves, so anything malformed is suspect.
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(pointer), UInt(X509_V_FLAG_X509_STRICT))
        switch configuration.peerVerification {
        case .trustedCAs(let authorities):
            try addTrustedCAs(authorities)
        case .pinnedCA(let sha256):
            guard sha256.count == SHA256.byteCount else {
                throw TLSError(.invalidArgument, "a CA pin must be a SHA-256 hash of 32 bytes (got \(sha256.count))")
            }
            SSL_CTX_set_cert_verify_callback(pointer, pinnedCAVerifyCallback, nil)
        }
        switch configuration.role {
        case .server:
            SSL_CTX_set_alpn_select_cb(pointer, selectApplicationProtocol, nil)
            SSL_CTX_set_client_hello_cb(pointer, inspectClientHello, nil)
        case .client:
            let wire = protocols.flatMap { [UInt8($0.count)] + $0 }
            // Unlike most of OpenSSL, SSL_CTX_set_alpn_protos returns 0 on success.
            guard SSL_CTX_set_alpn_protos(pointer, wire, UInt32(wire.count)) == 0 else {
                throw TLSError.openSSL(.openSSL, "could not set the ALPN protocol list")
            }
        }
    }

    private func addTrustedCAs(_ authorities: [TrustedCA]) throws {
        guard !authorities.isEmpty else {
            throw TLSError(
                .invalidArgument, "no trusted CA configured: every peer must be verified against at least one CA")
        }
        // OpenSSL finds issuers by subject name; two trusted CAs with one name would make
        // "which CA verified this peer" ambiguous.
        for (index, authority) in authorities.enumerated() {
            for other in authorities[..<index]
            where X509_NAME_cmp(
                X509_get_subject_name(authority.certificate.pointer), X509_get_subject_name(other.certificate.pointer))
                == 0
            {
                throw TLSError(
                    .invalidArgument,
                    "trusted CAs \"\(other.label)\" and \"\(authority.label)\" have the same subject name; give each CA a distinct common name"
                )
            }
        }
        let store = SSL_CTX_get_cert_store(pointer)
        for authority in authorities {
            guard X509_check_ca(authority.certificate.pointer) == 1 else {
                throw TLSError(
                    .invalidArgument,
                    "trusted \(authority.label) certificate \(authority.certificate.displayName) is not a CA certificate"
                )
            }
            guard X509_STORE_add_cert(store, authority.certificate.pointer) == 1 else {
                throw TLSError.openSSL(.openSSL, "could not add \(authority.label) to the trust store")
            }
        }
    }

    /// The configured CA whose certificate is `anchor`, compared by DER fingerprint.
    func trustedCA(matching anchor: Certificate) -> TrustedCA? {
        guard case .trustedCAs(let authorities) = configuration.peerVerification else { return nil }
        return authorities.first { $0.certificate.sha256Fingerprint == anchor.sha256Fingerprint }
    }
}

/// ALPN selection on the server: the first protocol in the *client's* order that we serve, so a
/// client offering several gets the one it prefers (an operator tool offering both the operator
/// and the node protocol is an operator). The enrollment protocol is chosen only when it is
/// offered alone. No overlap fails the handshake (no_application_protocol alert) instead of
/// continuing without ALPN, so a client speaking another protocol version is stopped before any
/// application data.
private func selectApplicationProtocol(
    ssl: OpaquePointer?,
    out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    outLength: UnsafeMutablePointer<UInt8>?,
    offered: UnsafePointer<UInt8>?,
    offeredLength: UInt32,
    argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let out, let outLength, let offered,
        let connection = TLSConnection.owning(ssl: ssl)
    else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let offeredList = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    let offeredNames = applicationProtocolNames(offeredList)
    let served = connection.context.applicationProtocolsWire.filter {
        // The enrollment protocol is chosen only for an enrollment connection, and then nothing else.
        ($0 == connection.context.enrollmentProtocolWire) == connection.isEnrollment
    }
    guard let range = offeredNames.first(where: { name in served.contains { offeredList[name].elementsEqual($0) } })
    else {
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    out.pointee = offered + range.lowerBound
    outLength.pointee = UInt8(range.count)
    if connection.context.ticketKeys != nil,
        !connection.context.resumes(applicationProtocol: UnsafeBufferPointer(rebasing: offeredList[range]))
    {
        SSL_set_num_tickets(ssl, 0)
    }
    return SSL_TLSEXT_ERR_OK
}

/// The ranges of the names in an ALPN protocol list (each name prefixed by its length byte).
/// A malformed tail is ignored; what came before it still counts.
func applicationProtocolNames(_ list: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
    var names: [Range<Int>] = []
    var index = 0
    while index < list.count {
        let start = index + 1
        let end = start + Int(list[index])
        guard end <= list.count else { break }
        names.append(start..<end)
        index = end
    }
    return names
}

/// Runs before the server processes a ClientHello. A client that offers no ALPN at all is refused
/// here with the no_application_protocol alert, as one offering none of ours is (OpenSSL would
/// otherwise finish the handshake without a protocol, and the client would see only a closed
/// socket). A client offering only the enrollment protocol gets an optional client certificate
/// (see `TLSConfiguration.enrollmentProtocol`); every other client still must present one.
private func inspectClientHello(
    ssl: OpaquePointer?, alert: UnsafeMutablePointer<Int32>?, argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let connection = TLSConnection.owning(ssl: ssl) else { return SSL_CLIENT_HELLO_ERROR }
    guard connection.classifyClientHello() else {
        alert?.pointee = TLS1_AD_NO_APPLICATION_PROTOCOL
        return SSL_CLIENT_HELLO_ERROR
    }
    if connection.clientHelloAdmitted { return SSL_CLIENT_HELLO_SUCCESS }
    if connection.holdsClientHello() { return SSL_CLIENT_HELLO_RETRY }
    connection.clientHelloAdmitted = true
    return connection.stopsAfterAdmission ? SSL_CLIENT_HELLO_RETRY : SSL_CLIENT_HELLO_SUCCESS
}

/// Verify callback for every certificate check: remembers the first failure on the connection so
/// the handshake error can name the certificate, the date and the fix, and on a server refuses a
/// verified client leaf without exactly one tunnel identity.
func recordingVerifyCallback(preverifyOK: Int32, storeContext: OpaquePointer?) -> Int32 {
    guard let storeContext, let connection = TLSConnection.owning(storeContext: storeContext) else { return 0 }
    guard preverifyOK == 1 else {
        if connection.toleratesExpiredEnrollmentCertificate(storeContext) { return 1 }
        connection.recordVerificationFailure(storeContext)
        return 0
    }
    return connection.acceptVerifiedCertificate(storeContext)
}

/// Replaces chain verification in CA-pin mode (see `TLSConnection.verifyAgainstPin`).
private func pinnedCAVerifyCallback(storeContext: OpaquePointer?, argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let storeContext, let connection = TLSConnection.owning(storeContext: storeContext) else { return 0 }
    return connection.verifyAgainstPin(storeContext)
}
