internal import COpenSSL
internal import TunnelTLS

/// An Ed25519 public key (an owned `EVP_PKEY`) that checkpoint signatures are verified with.
///
/// Auditors must obtain it out of band (not from the machine whose log they audit: whoever
/// can rewrite the log could replace the key beside it) and compare `keyID` with what the
/// operator published.
///
/// `@unchecked Sendable`: never mutated after construction; OpenSSL 3 allows concurrent
/// verification with one key.
public final class AuditPublicKey: @unchecked Sendable {
    let pointer: OpaquePointer
    /// The 32 raw key bytes (RFC 8032).
    public let rawBytes: [UInt8]
    /// First 16 hex digits of SHA-256 of `rawBytes`; written into every checkpoint.
    public let keyID: String

    /// Takes ownership of `pointer`, freeing it if it is not an Ed25519 key.
    init(owning pointer: OpaquePointer, source: String) throws(AuditError) {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = raw.count
        OpenSSLErrorQueue.clear()
        guard EVP_PKEY_is_a(pointer, "ED25519") == 1,
            EVP_PKEY_get_raw_public_key(pointer, &raw, &length) == 1, length == 32
        else {
            EVP_PKEY_free(pointer)
            throw AuditError.openSSL(.key, "\(source) is not an Ed25519 key")
        }
        self.pointer = pointer
        self.rawBytes = raw
        self.keyID = String(Hex.encode(SHA256.hash(raw)).prefix(RecordFormat.keyIDLength))
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// Decodes a PEM `-----BEGIN PUBLIC KEY-----` block.
    /// - Parameter source: the file or origin, used only in error messages.
    public convenience init(pem: [UInt8], source: String = "public key") throws(AuditError) {
        OpenSSLErrorQueue.clear()
        guard let key = readPEM(pem, { PEM_read_bio_PUBKEY($0, nil, refusePassphrase, nil) }) else {
            throw AuditError.openSSL(
                .key, "\(source) is not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\")")
        }
        try self.init(owning: key, source: source)
    }

    /// Reads a PEM public key file such as `audit-key.pub.pem`.
    public convenience init(pemFile path: String) throws(AuditError) {
        try self.init(pem: FileSystem.read(path), source: path)
    }

    public func pem() throws(AuditError) -> [UInt8] {
        try writePEM("the public key") { PEM_write_bio_PUBKEY($0, pointer) == 1 }
    }

    /// True only for a valid Ed25519 signature of `message` by this key.
    func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        OpenSSLErrorQueue.clear()
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        let valid =
            EVP_DigestVerifyInit_ex(context, nil, nil, nil, nil, pointer, nil) == 1
            && EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
        // A bad signature leaves queue entries that no later call should be blamed for.
        OpenSSLErrorQueue.clear()
        return valid
    }
}

/// The Ed25519 private key that signs checkpoints (an owned `EVP_PKEY`).
///
/// `@unchecked Sendable`: never mutated after construction; OpenSSL 3 allows concurrent
/// signing with one key.
public final class AuditSigningKey: @unchecked Sendable {
    public static let privateKeyFileName = "audit-key.pem"
    public static let publicKeyFileName = "audit-key.pub.pem"

    let pointer: OpaquePointer
    /// The public half, as a separate object holding no private material.
    public let publicKey: AuditPublicKey
    public var keyID: String { publicKey.keyID }

    /// Takes ownership of `pointer`, freeing it if it is not an Ed25519 private key.
    private init(owning pointer: OpaquePointer, source: String) throws(AuditError) {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = raw.count
        OpenSSLErrorQueue.clear()
        guard EVP_PKEY_is_a(pointer, "ED25519") == 1,
            EVP_PKEY_get_raw_public_key(pointer, &raw, &length) == 1, length == 32,
            let publicPointer = EVP_PKEY_new_raw_public_key_ex(nil, "ED25519", nil, raw, raw.count)
        else {
            EVP_PKEY_free(pointer)
            throw AuditError.openSSL(.key, "\(source) is not an Ed25519 private key")
        }
        do {
            self.publicKey = try AuditPublicKey(owning: publicPointer, source: source)
        } catch {
            EVP_PKEY_free(pointer)
            throw error
        }
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// A fresh key from OpenSSL's CSPRNG.
    public static func generate() throws(AuditError) -> AuditSigningKey {
        OpenSSLErrorQueue.clear()
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "ED25519", nil) else {
            throw AuditError.openSSL(.crypto, "could not create an Ed25519 key generation context")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_generate(context, &key) == 1, let key else {
            throw AuditError.openSSL(.crypto, "could not generate an Ed25519 key")
        }
        return try AuditSigningKey(owning: key, source: "the generated key")
    }

    /// Decodes an unencrypted PKCS#8 PEM private key; encrypted keys are refused rather than
    /// prompting for a passphrase on the terminal of a daemon.
    public convenience init(pem: [UInt8], source: String = "private key") throws(AuditError) {
        OpenSSLErrorQueue.clear()
        guard let key = readPEM(pem, { PEM_read_bio_PrivateKey($0, nil, refusePassphrase, nil) }) else {
            throw AuditError.openSSL(
                .key, "\(source) is not an unencrypted PEM private key (expected \"-----BEGIN PRIVATE KEY-----\")")
        }
        try self.init(owning: key, source: source)
    }

    /// Loads `audit-key.pem` from `keyDirectory`, or creates it (mode 0600) together with
    /// `audit-key.pub.pem` (0644) when neither exists. Both are written durably.
    ///
    /// A public key without its private key is refused instead of silently replaced: auditors
    /// may already hold that public key, and a new one would make the log look forged.
    public static func loadOrCreate(keyDirectory: String) throws(AuditError) -> AuditSigningKey {
        try FileSystem.makeDirectory(keyDirectory, mode: 0o700)
        let privatePath = "\(keyDirectory)/\(privateKeyFileName)"
        let publicPath = "\(keyDirectory)/\(publicKeyFileName)"
        guard FileSystem.exists(privatePath) else {
            guard !FileSystem.exists(publicPath) else {
                throw AuditError(
                    .key,
                    "\(publicPath) exists but \(privatePath) does not: the audit signing key was lost. Restore it, or start a new audit directory with a new key and give auditors its public key"
                )
            }
            let key = try generate()
            try FileSystem.writeDurably(privatePath, bytes: key.privateKeyPEM(), mode: 0o600)
            try FileSystem.writeDurably(publicPath, bytes: key.publicKey.pem(), mode: 0o644)
            return key
        }
        let key = try AuditSigningKey(pem: FileSystem.read(privatePath), source: privatePath)
        if FileSystem.exists(publicPath) {
            guard try AuditPublicKey(pemFile: publicPath).rawBytes == key.publicKey.rawBytes else {
                throw AuditError(
                    .key, "\(publicPath) does not belong to \(privatePath); auditors would reject every checkpoint")
            }
        } else {
            try FileSystem.writeDurably(publicPath, bytes: key.publicKey.pem(), mode: 0o644)
        }
        return key
    }

    /// PKCS#8 PEM, unencrypted: keep it in a 0600 file.
    public func privateKeyPEM() throws(AuditError) -> [UInt8] {
        try writePEM("the private key") { PEM_write_bio_PrivateKey($0, pointer, nil, nil, 0, nil, nil) == 1 }
    }

    /// The 64-byte Ed25519 signature of `message`.
    func sign(_ message: [UInt8]) throws(AuditError) -> [UInt8] {
        OpenSSLErrorQueue.clear()
        guard let context = EVP_MD_CTX_new() else {
            throw AuditError.openSSL(.crypto, "could not allocate an OpenSSL signing context")
        }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSignInit_ex(context, nil, nil, nil, nil, pointer, nil) == 1,
            EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64
        else {
            throw AuditError.openSSL(.crypto, "could not sign an audit checkpoint")
        }
        return signature
    }
}

/// Decodes a key with TunnelTLS's memory BIO; nil if it is no such key or the BIO cannot be made
/// (the queued OpenSSL errors say which).
private func readPEM(_ bytes: [UInt8], _ read: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
    try? withReadOnlyBIO(bytes, read)
}

/// Encodes a key as PEM with TunnelTLS's memory BIO.
private func writePEM(_ what: String, _ write: (OpaquePointer) -> Bool) throws(AuditError) -> [UInt8] {
    do { return try collectBIOOutput(what, write) } catch { throw AuditError(.crypto, error) }
}
