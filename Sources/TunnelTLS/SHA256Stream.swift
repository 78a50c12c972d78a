internal import COpenSSL

/// SHA-256 of bytes that arrive in pieces (a session recording as it is written), so the digest
/// is ready when the last piece is, without reading anything back. The one owner of its
/// OpenSSL digest context. Not thread-safe; one producer at a time.
public final class SHA256Stream {
    private let context: OpaquePointer
    private var finished = false

    public init() {
        // Both only fail when memory runs out, which Swift treats as fatal too (as SHA256.hash does).
        guard let context = EVP_MD_CTX_new() else { preconditionFailure("cannot allocate an OpenSSL digest context") }
        precondition(EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1, "SHA-256 digest initialisation failed")
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256Stream.update after finish")
        guard !bytes.isEmpty else { return }
        precondition(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1, "SHA-256 digest update failed")
    }

    /// The digest of everything passed to `update`; the stream takes no more bytes after this.
    public func finish() -> [UInt8] {
        precondition(!finished, "SHA256Stream.finish called twice")
        finished = true
        var digest = [UInt8](repeating: 0, count: SHA256.byteCount)
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        precondition(ok == 1 && length == UInt32(SHA256.byteCount), "SHA-256 digest failed")
        return digest
    }
}

/// SHA-256 of many separate messages through one reusable OpenSSL context: the audit log hashes
/// every record line when it writes it and again when it verifies it, so the algorithm is
/// fetched once and the context reused instead of an implicit fetch and an allocation per line.
/// The one owner of its context and algorithm. Not thread-safe.
package final class SHA256Hasher {
    private let algorithm: OpaquePointer
    private let context: OpaquePointer

    package init() throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let algorithm = EVP_MD_fetch(nil, "SHA256", nil) else {
            throw TLSError.openSSL(
                .openSSL, "OpenSSL offers no SHA-256 implementation (check its configuration and providers)")
        }
        guard let context = EVP_MD_CTX_new() else {
            EVP_MD_free(algorithm)
            throw TLSError.openSSL(.openSSL, "could not allocate an OpenSSL digest context")
        }
        self.algorithm = algorithm
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
        EVP_MD_free(algorithm)
    }

    /// Writes the 32-byte digest of `bytes` to `out`.
    package func digest(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        var length: UInt32 = 0
        let ok =
            EVP_DigestInit_ex2(context, algorithm, nil) == 1
            && EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1
            && EVP_DigestFinal_ex(context, out, &length) == 1
        // With a fetched SHA-256 these only fail on allocation failure, which Swift treats as fatal too.
        precondition(ok && length == UInt32(SHA256.byteCount), "SHA-256 digest failed")
    }

    package func digest(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: SHA256.byteCount)
        bytes.withUnsafeBytes { input in
            out.withUnsafeMutableBufferPointer { digest(input, into: $0.baseAddress!) }
        }
        return out
    }

    /// Replaces the 64 bytes of `hex` with the lowercase hex digest of `bytes`, allocating nothing.
    package func hexDigest(_ bytes: UnsafeRawBufferPointer, into hex: inout [UInt8]) {
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { rawBytes in
            digest(bytes, into: rawBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            hex.withUnsafeMutableBufferPointer { out in
                Hex.write(UnsafeRawBufferPointer(rawBytes), into: out.baseAddress!)
            }
        }
    }
}
