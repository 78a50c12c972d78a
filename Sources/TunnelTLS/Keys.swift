internal import COpenSSL

/// A private key (an owned `EVP_PKEY`). Keys generated here are ECDSA P-256.
///
/// `@unchecked Sendable`: the key is never mutated after construction, and OpenSSL 3
/// allows concurrent read-only use (signing, encoding) of one `EVP_PKEY`.
public final class PrivateKey: @unchecked Sendable {
    let pointer: OpaquePointer

    private init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// Generates a fresh ECDSA P-256 key from OpenSSL's CSPRNG.
    public static func generateP256() throws -> PrivateKey {
        OpenSSLErrorQueue.clear()
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw TLSError.openSSL(.openSSL, "could not create an EC key generation context")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1,
            EVP_PKEY_CTX_set_group_name(context, "P-256") == 1,
            EVP_PKEY_generate(context, &key) == 1, let key
        else {
            throw TLSError.openSSL(.openSSL, "could not generate an ECDSA P-256 key")
        }
        return PrivateKey(owning: key)
    }

    /// Decodes a PEM private key (PKCS#8 `PRIVATE KEY`, or the traditional EC/RSA forms).
    /// Encrypted keys are refused rather than prompting for a passphrase.
    /// - Parameter source: a file path or other origin, used only in error messages.
    public convenience init(pem: [UInt8], source: String = "private key") throws {
        OpenSSLErrorQueue.clear()
        let key = try withReadOnlyBIO(pem) { bio in
            PEM_read_bio_PrivateKey(bio, nil, refusePassphrase, nil)
        }
        guard let key else {
            throw TLSError.openSSL(
                .invalidEncoding,
                "\(source) is not an unencrypted PEM private key; expected a \"-----BEGIN PRIVATE KEY-----\" block"
            )
        }
        self.init(owning: key)
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), unencrypted: protect it with file mode 0600.
    public func pem() throws -> [UInt8] {
        try collectBIOOutput("private key") { bio in
            PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil) == 1
        }
    }

    /// The public half, as a separate object that holds no private material.
    public func publicKey() throws -> PublicKey {
        try PublicKey(der: subjectPublicKeyInfoDER(pointer))
    }
}

/// A public key (an owned `EVP_PKEY` without private material), e.g. taken from a CSR.
///
/// `@unchecked Sendable`: immutable after construction; see `PrivateKey`.
public final class PublicKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// Decodes a DER SubjectPublicKeyInfo.
    public convenience init(der: [UInt8]) throws {
        OpenSSLErrorQueue.clear()
        let key: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let key else {
            throw TLSError.openSSL(.invalidEncoding, "not a DER SubjectPublicKeyInfo")
        }
        self.init(owning: key)
    }

    /// Decodes a PEM `-----BEGIN PUBLIC KEY-----` block.
    public convenience init(pem: [UInt8]) throws {
        OpenSSLErrorQueue.clear()
        let key = try withReadOnlyBIO(pem) { bio in
            PEM_read_bio_PUBKEY(bio, nil, refusePassphrase, nil)
        }
        guard let key else {
            throw TLSError.openSSL(.invalidEncoding, "not a PEM public key")
        }
        self.init(owning: key)
    }

    public func pem() throws -> [UInt8] {
        try collectBIOOutput("public key") { bio in
            PEM_write_bio_PUBKEY(bio, pointer) == 1
        }
    }

    /// DER SubjectPublicKeyInfo, the form compared when checking that two keys are equal.
    public func der() throws -> [UInt8] {
        try subjectPublicKeyInfoDER(pointer)
    }

    /// RSA keys below this many bits are refused (NIST SP 800-131A: 112-bit security).
    public static let minimumRSABits: Int32 = 2048
    /// Elliptic curves a certificate may be issued for.
    public static let acceptedCurves: Set<String> = ["prime256v1", "P-256", "secp384r1", "P-384", "secp521r1", "P-521"]

    /// Why a CA must not certify this key, or nil: RSA below 2048 bits, EC on any curve but
    /// P-256, P-384 and P-521, and every type but RSA, EC, Ed25519 and Ed448 (DSA, DH, …).
    public var weakness: String? {
        let bits = EVP_PKEY_get_bits(pointer)
        switch EVP_PKEY_get_base_id(pointer) {
        case NID_rsaEncryption, NID_rsassaPss:
            return bits >= Self.minimumRSABits
                ? nil
                : "an RSA key of \(bits) bits is too weak; use at least \(Self.minimumRSABits) bits, or an EC P-256 key"
        case NID_X9_62_id_ecPublicKey:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            guard EVP_PKEY_get_group_name(pointer, &name, name.count, &length) == 1 else {
                return "an EC key without a named curve is not accepted; use P-256"
            }
            let curve = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return Self.acceptedCurves.contains(curve)
                ? nil : "an EC key on curve \(curve) is not accepted; use P-256, P-384 or P-521"
        case NID_ED25519, NID_ED448:
            return nil
        default:
            return
                "this key type is not accepted; use EC P-256 (or RSA of at least \(Self.minimumRSABits) bits, or Ed25519)"
        }
    }
}

/// DER SubjectPublicKeyInfo of any `EVP_PKEY` (only the public half is encoded).
private func subjectPublicKeyInfoDER(_ key: OpaquePointer) throws -> [UInt8] {
    OpenSSLErrorQueue.clear()
    var der: UnsafeMutablePointer<UInt8>?
    let length = i2d_PUBKEY(key, &der)
    guard length > 0, let der else {
        throw TLSError.openSSL(.openSSL, "could not encode the public key")
    }
    defer { tunnel_openssl_free(der) }
    return Array(UnsafeBufferPointer(start: der, count: Int(length)))
}
