import Testing

@testable import TunnelTLS

/// A memory BIO never shrinks by itself: after a burst, a connection gives its grown, drained
/// buffers back, keeps working, and keeps small ones.
@Suite("Drained TLS buffers")
struct DrainedBufferTests {
    @Test func grownBuffersGoBackAndTheConnectionCarriesOn() throws {
        let pki = try PKI()
        let node = try TunnelIdentity(role: .node, name: "node-3")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), pki.serverContext())
        var readBuffer = [UInt8](repeating: 0, count: TLSConnection.recommendedReadBufferSize)

        /// Sends `count` bytes of `value` from client to server in one write and one feed.
        func send(_ count: Int, _ value: UInt8) throws -> [UInt8] {
            try writeAll(client, count, value)
            var wire: [UInt8] = []
            client.drainCiphertext(into: &wire)
            server.feedCiphertext(wire)
            var received: [UInt8] = []
            while case .bytes(let read) = try readBuffer.withUnsafeMutableBytes({ try server.readPlaintext(into: $0) })
            {
                received += readBuffer[..<read]
            }
            return received
        }

        #expect(try send(256 * 1024, 7) == [UInt8](repeating: 7, count: 256 * 1024))
        #expect(client.bufferCapacities.output > 256 * 1024)
        client.releaseDrainedBuffers()
        server.releaseDrainedBuffers()
        #expect(client.bufferCapacities.output == 0)
        #expect(server.bufferCapacities.input <= TLSConnection.keptBufferCapacity)

        #expect(try send(100, 9) == [UInt8](repeating: 9, count: 100))
        let small = client.bufferCapacities.output
        #expect(small > 0 && small <= TLSConnection.keptBufferCapacity)
        client.releaseDrainedBuffers()
        #expect(client.bufferCapacities.output == small, "a buffer of a record or two is kept")
    }

    /// Writes `count` bytes of `value`, a record or more at a time, as a connection's flush does.
    private func writeAll(_ connection: TLSConnection, _ count: Int, _ value: UInt8) throws {
        let bytes = [UInt8](repeating: value, count: count)
        var offset = 0
        while offset < count {
            let written = try bytes.withUnsafeBytes {
                try connection.writePlaintext(UnsafeRawBufferPointer(rebasing: $0[offset...]))
            }
            #expect(written > 0)
            guard written > 0 else { return }
            offset += written
        }
    }

    @Test func ciphertextNotYetSentIsNeverDropped() throws {
        let pki = try PKI()
        let node = try TunnelIdentity(role: .node, name: "node-4")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), pki.serverContext())
        try writeAll(client, 64 * 1024, 1)
        let pending = client.pendingCiphertextCount
        client.releaseDrainedBuffers()
        #expect(client.pendingCiphertextCount == pending)
        var wire: [UInt8] = []
        client.drainCiphertext(into: &wire)
        server.feedCiphertext(wire)
        var readBuffer = [UInt8](repeating: 0, count: TLSConnection.recommendedReadBufferSize)
        var total = 0
        while case .bytes(let read) = try readBuffer.withUnsafeMutableBytes({ try server.readPlaintext(into: $0) }) {
            total += read
        }
        #expect(total == 64 * 1024)
    }
}
