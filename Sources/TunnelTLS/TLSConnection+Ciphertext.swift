internal import COpenSSL

// The ciphertext side of a `TLSConnection`: bytes from the socket into the input BIO, and what
// TLS wrote to the output BIO back out for the socket.
extension TLSConnection {
    /// Hands bytes received from the socket to TLS. Copies them once into the input BIO.
    public func feedCiphertext(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, Int(Int32.max))
            let written = BIO_write(networkInput, bytes.baseAddress! + offset, Int32(chunk))
            // A memory BIO only fails to grow when memory is exhausted.
            precondition(written == Int32(chunk), "memory BIO write failed")
            offset += chunk
        }
    }

    public func feedCiphertext(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feedCiphertext($0) }
    }

    /// Tells TLS the socket reached end of stream. Pending data is still decrypted; after that, a
    /// missing close_notify is reported as `.truncated` (a cut connection, not a clean close).
    public func feedEndOfCiphertext() {
        tunnel_bio_set_mem_eof_return(networkInput, 0)
    }

    /// Ciphertext waiting for the socket.
    public var pendingCiphertextCount: Int {
        Int(BIO_ctrl_pending(networkOutput))
    }

    /// Appends all ciphertext waiting for the socket to `buffer`, as a freshly allocated array of
    /// exactly the right size (ready to be pinned for a socket write). Pending bytes are copied
    /// once, never zero-filled first; existing contents of `buffer` are copied along. For
    /// allocation-free draining into pooled memory, use `drainCiphertext(into:)` with a raw buffer.
    public func drainCiphertext(into buffer: inout [UInt8]) {
        let pending = pendingCiphertextCount
        guard pending > 0 else { return }
        let existing = buffer.count
        buffer = [UInt8](unsafeUninitializedCapacity: existing + pending) { storage, initialized in
            let raw = UnsafeMutableRawBufferPointer(storage)
            buffer.withUnsafeBytes { raw.copyMemory(from: $0) }
            initialized = existing + readOutput(into: UnsafeMutableRawBufferPointer(rebasing: raw[existing...]))
        }
    }

    /// Moves up to `buffer.count` bytes of pending ciphertext into caller-owned memory (e.g. a pooled
    /// socket write buffer) and returns how many; call again while `pendingCiphertextCount > 0`.
    public func drainCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        readOutput(into: buffer)
    }

    private func readOutput(into storage: UnsafeMutableRawBufferPointer) -> Int {
        var total = 0
        while total < storage.count {
            var read = 0
            guard BIO_read_ex(networkOutput, storage.baseAddress! + total, storage.count - total, &read) == 1, read > 0
            else { break }
            total += read
        }
        return total
    }
}
