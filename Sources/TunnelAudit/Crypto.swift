internal import COpenSSL

/// SHA-256 through one reusable OpenSSL context.
///
/// Every record line is hashed once when written and once per verification, so the algorithm
/// is fetched once and the context reused instead of paying OpenSSL's implicit fetch and a
/// context allocation per line.
final class SHA256Hasher {
    static let byteCount = 32
    private let algorithm: OpaquePointer
    private let context: OpaquePointer

    init() throws(AuditError) {
        OpenSSLErrors.clear()
        guard let algorithm = EVP_MD_fetch(nil, "SHA256", nil) else {
            throw OpenSSLErrors.error(.crypto, "OpenSSL offers no SHA-256 implementation (check its configuration and providers)")
        }
        guard let context = EVP_MD_CTX_new() else {
            EVP_MD_free(algorithm)
            throw OpenSSLErrors.error(.crypto, "could not allocate an OpenSSL digest context")
        }
        self.algorithm = algorithm
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
        EVP_MD_free(algorithm)
    }

    /// Writes the 32-byte digest of `bytes` to `out`.
    func digest(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        var length: UInt32 = 0
        let ok = EVP_DigestInit_ex2(context, algorithm, nil) == 1
            && EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1
            && EVP_DigestFinal_ex(context, out, &length) == 1
        // With a fetched SHA-256 these only fail on allocation failure, which Swift treats as fatal too.
        precondition(ok && length == UInt32(Self.byteCount), "SHA-256 digest failed")
    }

    func digest(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.byteCount)
        bytes.withUnsafeBytes { input in
            out.withUnsafeMutableBufferPointer { digest(input, into: $0.baseAddress!) }
        }
        return out
    }

    /// Replaces the 64 bytes of `hex` with the lowercase hex digest of `bytes`, allocating nothing.
    func hexDigest(_ bytes: UnsafeRawBufferPointer, into hex: inout [UInt8]) {
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { rawBytes in
            digest(bytes, into: rawBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            hex.withUnsafeMutableBufferPointer { out in
                Hex.write(UnsafeRawBufferPointer(rawBytes), into: out.baseAddress!)
            }
        }
    }
}

/// Lowercase hexadecimal, the form of hashes and key ids in records.
enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func write(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        for (index, byte) in bytes.enumerated() {
            out[2 * index] = digits[Int(byte >> 4)]
            out[2 * index + 1] = digits[Int(byte & 0x0F)]
        }
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8](repeating: 0, count: bytes.count * 2)
        bytes.withUnsafeBytes { input in out.withUnsafeMutableBufferPointer { write(input, into: $0.baseAddress!) } }
        return String(decoding: out, as: UTF8.self)
    }
}

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
        OpenSSLErrors.clear()
        guard EVP_PKEY_is_a(pointer, "ED25519") == 1,
              EVP_PKEY_get_raw_public_key(pointer, &raw, &length) == 1, length == 32
        else {
            EVP_PKEY_free(pointer)
            throw OpenSSLErrors.error(.key, "\(source) is not an Ed25519 key")
        }
        let hasher: SHA256Hasher
        do {
            hasher = try SHA256Hasher()
        } catch {
            // Owned since the call: an init that throws must free it, as no deinit will.
            EVP_PKEY_free(pointer)
            throw error
        }
        self.pointer = pointer
        self.rawBytes = raw
        self.keyID = String(Hex.encode(hasher.digest(raw)).prefix(RecordFormat.keyIDLength))
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// Decodes a PEM `-----BEGIN PUBLIC KEY-----` block.
    /// - Parameter source: the file or origin, used only in error messages.
    public convenience init(pem: [UInt8], source: String = "public key") throws(AuditError) {
        OpenSSLErrors.clear()
        guard let key = withReadOnlyBIO(pem, { PEM_read_bio_PUBKEY($0, nil, refusePassphrase, nil) }) else {
            throw OpenSSLErrors.error(.key, "\(source) is not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\")")
        }
        try self.init(owning: key, source: source)
    }

    /// Reads a PEM public key file such as `audit-key.pub.pem`.
    public convenience init(pemFile path: String) throws(AuditError) {
        try self.init(pem: FileSystem.read(path), source: path)
    }

    public func pem() throws(AuditError) -> [UInt8] {
        try collectBIOOutput("the public key") { PEM_write_bio_PUBKEY($0, pointer) == 1 }
    }

    /// True only for a valid Ed25519 signature of `message` by this key.
    func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        OpenSSLErrors.clear()
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        let valid = EVP_DigestVerifyInit_ex(context, nil, nil, nil, nil, pointer, nil) == 1
            && EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
        // A bad signature leaves queue entries that no later call should be blamed for.
        OpenSSLErrors.clear()
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
        OpenSSLErrors.clear()
        guard EVP_PKEY_is_a(pointer, "ED25519") == 1,
              EVP_PKEY_get_raw_public_key(pointer, &raw, &length) == 1, length == 32,
              let publicPointer = EVP_PKEY_new_raw_public_key_ex(nil, "ED25519", nil, raw, raw.count)
        else {
            EVP_PKEY_free(pointer)
            throw OpenSSLErrors.error(.key, "\(source) is not an Ed25519 private key")
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
        OpenSSLErrors.clear()
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "ED25519", nil) else {
            throw OpenSSLErrors.error(.crypto, "could not create an Ed25519 key generation context")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_generate(context, &key) == 1, let key else {
            throw OpenSSLErrors.error(.crypto, "could not generate an Ed25519 key")
        }
        return try AuditSigningKey(owning: key, source: "the generated key")
    }

    /// Decodes an unencrypted PKCS#8 PEM private key; encrypted keys are refused rather than
    /// prompting for a passphrase on the terminal of a daemon.
    public convenience init(pem: [UInt8], source: String = "private key") throws(AuditError) {
        OpenSSLErrors.clear()
        guard let key = withReadOnlyBIO(pem, { PEM_read_bio_PrivateKey($0, nil, refusePassphrase, nil) }) else {
            throw OpenSSLErrors.error(.key, "\(source) is not an unencrypted PEM private key (expected \"-----BEGIN PRIVATE KEY-----\")")
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
                throw AuditError(.key, "\(publicPath) exists but \(privatePath) does not: the audit signing key was lost. Restore it, or start a new audit directory with a new key and give auditors its public key")
            }
            let key = try generate()
            try FileSystem.writeDurably(privatePath, bytes: key.privateKeyPEM(), mode: 0o600)
            try FileSystem.writeDurably(publicPath, bytes: key.publicKey.pem(), mode: 0o644)
            return key
        }
        let key = try AuditSigningKey(pem: FileSystem.read(privatePath), source: privatePath)
        if FileSystem.exists(publicPath) {
            guard try AuditPublicKey(pemFile: publicPath).rawBytes == key.publicKey.rawBytes else {
                throw AuditError(.key, "\(publicPath) does not belong to \(privatePath); auditors would reject every checkpoint")
            }
        } else {
            try FileSystem.writeDurably(publicPath, bytes: key.publicKey.pem(), mode: 0o644)
        }
        return key
    }

    /// PKCS#8 PEM, unencrypted: keep it in a 0600 file.
    public func privateKeyPEM() throws(AuditError) -> [UInt8] {
        try collectBIOOutput("the private key") { PEM_write_bio_PrivateKey($0, pointer, nil, nil, 0, nil, nil) == 1 }
    }

    /// The 64-byte Ed25519 signature of `message`.
    func sign(_ message: [UInt8]) throws(AuditError) -> [UInt8] {
        OpenSSLErrors.clear()
        guard let context = EVP_MD_CTX_new() else {
            throw OpenSSLErrors.error(.crypto, "could not allocate an OpenSSL signing context")
        }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSignInit_ex(context, nil, nil, nil, nil, pointer, nil) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64
        else {
            throw OpenSSLErrors.error(.crypto, "could not sign an audit checkpoint")
        }
        return signature
    }
}

/// PEM passphrase callback that refuses, so OpenSSL never prompts on a terminal.
private let refusePassphrase: @convention(c) (
    UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?
) -> Int32 = { _, _, _, _ in -1 }

/// Runs `body` with a read-only memory BIO over `bytes`; nil if the BIO cannot be allocated.
private func withReadOnlyBIO(_ bytes: [UInt8], _ body: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
    bytes.withUnsafeBytes { raw in
        guard let base = raw.baseAddress, let bio = BIO_new_mem_buf(base, Int32(raw.count)) else { return nil }
        defer { BIO_free(bio) }
        return body(bio)
    }
}

/// Runs `write` against a fresh memory BIO and returns what it wrote.
private func collectBIOOutput(_ what: String, _ write: (OpaquePointer) -> Bool) throws(AuditError) -> [UInt8] {
    OpenSSLErrors.clear()
    guard let bio = BIO_new(BIO_s_mem()) else {
        throw OpenSSLErrors.error(.crypto, "could not allocate an OpenSSL memory BIO")
    }
    defer { BIO_free(bio) }
    guard write(bio) else { throw OpenSSLErrors.error(.crypto, "could not encode \(what) as PEM") }
    var data: UnsafeMutablePointer<CChar>?
    let length = tunnel_bio_get_mem_data(bio, &data)
    guard length > 0, let data else { return [] }
    return Array(UnsafeRawBufferPointer(start: data, count: length))
}
