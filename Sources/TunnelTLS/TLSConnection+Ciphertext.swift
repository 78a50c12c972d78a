internal import COpenSSL

// The ciphertext side of a `TLSConnection`: bytes from the socket into the input BIO, and what
// TLS wrote to its output sink back out for the socket.
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

    /// Runs `body` (which reads plaintext or advances the handshake) with `bytes` as the ciphertext
    /// TLS reads next, read straight from the caller's memory: no copy into the input BIO. What
    /// `body` leaves unread (a handshake held at its ClientHello) is copied in afterwards, so the
    /// caller's memory is free again on return, as with `feedCiphertext`. Falls back to feeding
    /// a copy when earlier ciphertext still waits, so bytes stay in order.
    public func withReceivedCiphertext<Result, Failure: Error>(
        _ bytes: UnsafeRawBufferPointer, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        guard BIO_ctrl_pending(networkInput) == 0, !bytes.isEmpty, bytes.count <= Int(Int32.max),
            let borrowed = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
        else {
            feedCiphertext(bytes)
            return try body()
        }
        // Empty means "no data yet", as for the owned BIO.
        tunnel_bio_set_mem_eof_return(borrowed, -1)
        // `SSL_set0_rbio` releases the current read BIO: this reference keeps the owned one alive.
        BIO_up_ref(networkInput)
        SSL_set0_rbio(ssl, borrowed)
        defer {
            let unread = Int(BIO_ctrl_pending(borrowed))
            if unread > 0 { feedCiphertext(UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - unread)...])) }
            // Hands the reference taken above back to `ssl`, and frees the borrowed BIO.
            SSL_set0_rbio(ssl, networkInput)
        }
        return try body()
    }

    public func feedCiphertext(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feedCiphertext($0) }
    }

    /// Tells TLS the socket reached end of stream. Pending data is still decrypted; after that, a
    /// missing close_notify is reported as `.truncated` (a cut connection, not a clean close).
    public func feedEndOfCiphertext() {
        tunnel_bio_set_mem_eof_return(networkInput, 0)
    }

    /// At least how many plaintext bytes `readPlaintext` can deliver from what has arrived, give
    /// or take the rest of a record already partly read: ciphertext not yet read by TLS (which
    /// holds no less than the plaintext it decrypts to) plus plaintext decrypted and not yet read.
    /// Sizes a buffer the plaintext can be decrypted into, to be kept without a copy.
    public var receivedPlaintextBound: Int {
        // The read BIO, not `networkInput`: inside `withReceivedCiphertext` it is the borrowed one.
        Int(BIO_ctrl_pending(SSL_get_rbio(ssl))) + Int(SSL_pending(ssl))
    }

    /// A memory BIO keeps the largest buffer it ever grew to: without this, every connection that
    /// once carried bulk data would hold a write chunk of ciphertext buffer (tens to hundreds of
    /// KiB) for the rest of its life. Buffers up to this size are kept and reused.
    static let keptBufferCapacity = 16 * 1024

    /// Frees the BIOs' buffers that grew past `keptBufferCapacity` and are empty now: for an
    /// owner whose turn of writes has drained, so many busy connections do not each keep the
    /// largest turn they ever wrote.
    public func releaseDrainedBuffers() {
        Self.releaseIfDrained(networkInput)
        if tunnel_sink_capacity(networkOutput) > Self.keptBufferCapacity { tunnel_sink_release(networkOutput) }
    }

    private static func releaseIfDrained(_ bio: OpaquePointer) {
        guard BIO_ctrl_pending(bio) == 0, tunnel_bio_mem_capacity(bio) > keptBufferCapacity else { return }
        // Out of memory, the old buffer simply stays.
        _ = tunnel_bio_mem_renew(bio)
    }

    /// The sizes the input and output BIOs' buffers have grown to (for tests).
    var bufferCapacities: (input: Int, output: Int) {
        (tunnel_bio_mem_capacity(networkInput), tunnel_sink_capacity(networkOutput))
    }

    /// Ciphertext waiting for the socket.
    public var pendingCiphertextCount: Int {
        tunnel_sink_pending(networkOutput)
    }

    /// Hands the ciphertext waiting for the socket to `send` where it lies (no copy), at most
    /// `limit` bytes of it; `send` returns how many it took, which TLS then forgets. The bytes are
    /// valid only during the call.
    public func sendCiphertext<Failure: Error>(
        limit: Int = .max, _ send: (UnsafeRawBufferPointer) throws(Failure) -> Int
    ) throws(Failure) -> Int {
        let count = min(tunnel_sink_pending(networkOutput), limit)
        guard count > 0 else { return 0 }
        let taken = try send(UnsafeRawBufferPointer(start: tunnel_sink_pending_bytes(networkOutput), count: count))
        tunnel_sink_take(networkOutput, min(taken, count))
        return taken
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
        sendCiphertext(limit: storage.count) { pending in
            storage.copyMemory(from: pending)
            return pending.count
        }
    }
}
