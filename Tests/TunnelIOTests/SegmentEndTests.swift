import Testing
import TunnelIO

/// Issue #12: on a slow link a keystroke waits behind every byte the kernel holds unsent, so the
/// tunnel holds the kernel to TCP_NOTSENT_LOWAT. The kernel checks that mark only when a write
/// starts a new segment; `endsSegment` makes every write do so.
@Suite struct SegmentEndTests {
    /// Distinct pieces written while the write queue stays empty, and what became of them.
    private final class Writer {
        var sent = FNV1a()
        var total = 0
        var writes = 0
        /// Writes the kernel did not take whole at once, and completions of their queued rest.
        var queued = 0
        var completions = 0

        /// Writes until the kernel leaves part of a write queued: far more than the reader's
        /// window, so it must refuse one at last.
        func fillUntilRefused(_ client: StreamConnection, chunk: Int, endsSegment: Bool) throws {
            while client.writeQueueSize == 0, writes < 100_000 {
                let bytes = patternBytes(count: chunk, seed: UInt64(writes + 1))
                bytes.withUnsafeBytes { sent.add($0) }
                total += chunk
                writes += 1
                let taken = try bytes.withUnsafeBytes {
                    try client.send($0, endsSegment: endsSegment) { [self] error in
                        #expect(error == nil)
                        completions += 1
                    }
                }
                if taken < chunk { queued += 1 }
            }
        }
    }

    /// Writes `chunk`-byte pieces, each once the write queue is empty, to a reader that never
    /// reads, until the kernel refuses one; then reports the kernel's unsent bytes, lets the
    /// reader read everything and checks it arrived whole, in order, with one completion for each
    /// write whose rest was queued.
    private func unsentWhenRefused(endsSegment: Bool, lowWater: Int, chunk: Int) throws -> Int? {
        let harness = try LoopHarness(timeoutMilliseconds: 30_000)
        let loop = harness.loop
        var server: StreamConnection?
        let writer = Writer()
        var received = FNV1a()
        var receivedCount = 0
        var unsent: Int?
        var connected = false
        var client: StreamConnection?
        var listener: TCPListener?
        func finish() {
            server?.close()
            client?.close()
            listener?.close()
            harness.finish()
        }
        // Runs once both ends are up, whichever comes last.
        func begin() {
            guard connected, let server, let client else { return }
            do {
                try client.setNoDelay(true)
                try client.setNotSentLowWater(UInt32(lowWater))
                try writer.fillUntilRefused(client, chunk: chunk, endsSegment: endsSegment)
                unsent = try client.unsentBytes()
                try server.startReading { event in
                    guard case .data(let bytes) = event else { return }
                    received.add(bytes)
                    receivedCount += bytes.count
                    if receivedCount == writer.total { finish() }
                }
            } catch {
                Issue.record("\(error)")
                finish()
            }
        }
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let accepted) = result else { return }
            server = accepted
            begin()
        }
        client = try StreamConnection.connect(loop: loop, to: listener!.localAddress) { result in
            if case .failure(let error) = result { Issue.record("connect failed: \(error)") }
            connected = true
            begin()
        }
        harness.run()
        #expect(receivedCount == writer.total && received.value == writer.sent.value)
        #expect(writer.queued >= 1 && writer.completions == writer.queued)
        return unsent
    }

    @Test("writes that end their segment stop at the kernel's low-water mark, one write past it at most")
    func endingWritesStopAtTheMark() throws {
        let unsent = try unsentWhenRefused(endsSegment: true, lowWater: 4096, chunk: 1024)
        #expect(unsent.map { (4096..<(4096 + 1024)).contains($0) } == true, "unsent \(String(describing: unsent))")
    }

    /// Plain writes are appended to the kernel's last segment unchecked: on this machine's kernel
    /// (6.18) the same run left 35,840 bytes unsent against the 4,096-byte mark. Not asserted,
    /// since it is the kernel's behaviour, not ours.
    @Test("plain writes still arrive whole, the refused one completing once")
    func plainWritesArriveWhole() throws {
        let unsent = try unsentWhenRefused(endsSegment: false, lowWater: 4096, chunk: 1024)
        #expect(unsent != nil)
    }
}
