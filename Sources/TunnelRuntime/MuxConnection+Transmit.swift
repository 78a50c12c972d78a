import Multiplex
import TunnelIO
import TunnelTLS

// The pump's two directions below the session: received ciphertext decrypted into the array the
// session's data events slice, and frames pulled from the session, encrypted and written in
// chunks the kernel takes at once (`TransmitQueueLimit` says why and how much).
extension MuxConnection {
    /// Decrypts what has arrived straight into a fresh array sized for it, which the session's
    /// data events then slice: no scratch buffer and no copy out of it.
    func decryptReceived() throws(TLSError) -> (TLSConnection.ReadResult, [UInt8]) {
        // Nothing to decrypt: TLS is still asked (it reports a close or an alert), but no array is
        // built in place, since an empty one is the shared empty-array storage, and setting its
        // count from two loops' threads is a race ThreadSanitizer reports.
        guard tls.receivedPlaintextBound > 0 else {
            return (try tls.readPlaintext(into: UnsafeMutableRawBufferPointer(start: nil, count: 0)), [])
        }
        var result = Result<TLSConnection.ReadResult, TLSError>.success(.wouldBlock)
        let bytes = [UInt8](unsafeUninitializedCapacity: tls.receivedPlaintextBound) { storage, initialized in
            result = Result { () throws(TLSError) in try tls.readPlaintext(into: UnsafeMutableRawBufferPointer(storage))
            }
            if case .success(.bytes(let count)) = result { initialized = count }
        }
        return (try result.get(), bytes)
    }

    /// Pulls frames from the session while the kernel takes them at once, one chunk per socket
    /// write and at most `highWater` per turn, encrypts and writes them. A turn whose budget ran
    /// out while the kernel kept taking goes on at the next loop turn; one the kernel refused goes
    /// on when the write queue has drained (`queuedWriteDone`).
    func flush() {
        // What a worker's step wrote goes out once it is back (`handshakeCameBack`).
        guard !handshakeIsAway else { return }
        if phase == .handshaking { writeCiphertext() }
        guard phase == .established else { return }
        var budget = queueLimit.highWater
        while writeCiphertext() {
            guard budget > 0 else {
                flushNextTurn()
                break
            }
            buffers.plaintext.removeAll(keepingCapacity: true)
            var urgent = 0
            let pulled = session.pollTransmit(
                into: &buffers.plaintext, maxBytes: min(queueLimit.writeChunk, budget), urgentBytes: &urgent)
            guard pulled > 0 else { break }
            budget -= pulled
            do {
                try encryptPlaintextOut(urgentBytes: urgent)
            } catch {
                close(Failure(.internalError, "TLS write failed: \(error)"))
                return
            }
        }
        let refused = socket.writeQueueSize > 0
        sampleSendRate(refused ? .refused(afterDrain: resumedByDrain) : .tookAll)
        resumedByDrain = false
        if !refused, tls.pendingCiphertextCount == 0 {
            // Drained: the TLS buffers this turn grew go back now, not only once the connection is
            // quiet. Kept while streams stay open, 200 busy connections held their largest turn of
            // ciphertext each (37 MiB of the 1,000-node soak's peak); given back, one connection's
            // buffer serves the next one's turn.
            tls.releaseDrainedBuffers()
        }
        sweepClosedStreams()
        armTimer()
    }

    /// Feeds the rate estimate what the kernel has taken so far (all bytes handed to the socket
    /// but those still in libuv's write queue) and applies a new kernel share.
    private func sampleSendRate(_ end: TransmitQueueLimit.FlushEnd) {
        queueLimit.flushEnded(end, kernelTaken: bytesHandedToSocket - socket.writeQueueSize, at: Self.now()) {
            try? socket.path()
        }
        if queueLimit.notSentLowWater != appliedNotSentLowWater, !socket.isClosed {
            appliedNotSentLowWater = queueLimit.notSentLowWater
            try? socket.setNotSentLowWater(UInt32(appliedNotSentLowWater))
        }
    }

    /// Hands all of `buffers.plaintext` to TLS; OpenSSL may take it one record at a time.
    /// Each TLS write makes one record of at most `recordSize`: the peer can decrypt nothing of a
    /// record before all of it has arrived, so on a slow link a keystroke shares a small record,
    /// and the first `urgentBytes` (control frames and interactive data) get records of their own.
    func encryptPlaintextOut(urgentBytes: Int = 0) throws {
        let recordSize = queueLimit.recordSize
        try buffers.plaintext.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let boundary = offset < urgentBytes ? urgentBytes : raw.count
                let end = min(boundary, offset + recordSize)
                let written = try tls.writePlaintext(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                guard written > 0 else { throw TLSError(.openSSL, "TLS accepted no plaintext") }
                offset += written
            }
        }
    }

    /// Moves what TLS has produced to the socket, sent straight from TLS's sink when libuv's write
    /// queue is empty: what the kernel takes at once costs no copy, no write request, no
    /// completion turn and no re-arming of the socket's poll; only the rest is copied into the
    /// queue, and its completion resumes the flush (`queuedWriteDone`). The rate estimate reads
    /// what the kernel took from the count handed over and the queue, not from completions.
    /// Established, it writes only while the socket's write queue is empty, and `flush` encrypts
    /// one `writeChunk` of frames per write. On a slow link (`endsEachWrite`) a write is cut at
    /// the chunk: the kernel takes it, and the few bytes of record overhead past it wait in the
    /// write queue until the kernel's unsent bytes fall below its mark, which paces the next turn
    /// (a keystroke under bulk on 20 Mbit/s: p50 6 ms; 12–16 ms when the whole turn went out at
    /// once). On a fast one the turn's ciphertext goes out in one write: cut there, the overhead
    /// took a syscall of its own after every chunk. Handshaking or closing, it writes
    /// everything. Returns whether TLS has nothing left and the kernel took all of it (there is
    /// room for more).
    @discardableResult
    func writeCiphertext() -> Bool {
        let paced = phase == .established
        let slowLink = paced && queueLimit.endsEachWrite
        while !socket.isClosed {
            let pending = tls.pendingCiphertextCount
            guard pending > 0 else { return socket.writeQueueSize == 0 }
            guard !paced || socket.writeQueueSize == 0 else { return false }
            do throws(IOError) {
                try tls.sendCiphertext(limit: slowLink ? queueLimit.writeChunk : pending) {
                    ciphertext throws(IOError) in
                    bytesHandedToSocket += ciphertext.count
                    try socket.send(ciphertext, endsSegment: slowLink) { [self] error in
                        if error == nil { queuedWriteDone() }
                    }
                    return ciphertext.count
                }
            } catch {
                close(Failure(.internalError, "write to \(remoteAddress) failed: \(error)"))
                return false
            }
        }
        return false
    }

    /// The kernel took bytes it had refused: once the write queue is empty, the flush goes on.
    private func queuedWriteDone() {
        guard phase == .established, socket.writeQueueSize == 0 else { return }
        resumedByDrain = true
        dispatch {}
    }

    /// Writes whatever the ended session still has (its final GOAWAY), ignoring the pacing.
    func flushFinalBytes() {
        guard !handshakeIsAway else { return }
        while tls.handshakeState.isDone {
            buffers.plaintext.removeAll(keepingCapacity: true)
            guard session.pollTransmit(into: &buffers.plaintext, maxBytes: Self.transmitChunk) > 0 else { break }
            guard (try? encryptPlaintextOut()) != nil else { break }
        }
        if tls.handshakeState.isDone { tls.shutdown() }
        writeCiphertext()
    }
}
