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
