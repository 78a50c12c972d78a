import Testing
import TunnelTLS

@Suite("Bulk transfer")
struct BulkTransferTests {
    @Test func sixtyFourMebibytesArriveIntact() throws {
        let pki = try PKI()
        let node = try TunnelIdentity(role: .node, name: "node-17")
        let (client, server) = try connect(
            pki.clientContext(pki.clientIdentity(node, issuer: pki.nodeCA)), pki.serverContext())
        #expect(client.handshakeState.isDone && server.handshakeState.isDone)

        let total = 64 << 20
        var generator = SplitMix64(seed: 0x7475_6e6e_656c)
        let payload = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let words = UnsafeMutableRawBufferPointer(buffer).bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
            initialized = total
        }
        var received: [UInt8] = []
        received.reserveCapacity(total)
        var readBuffer = [UInt8](repeating: 0, count: TLSConnection.recommendedReadBufferSize)
        var wire: [UInt8] = []
        var offset = 0
        let chunk = 256 * 1024
        while received.count < total {
            if offset < total {
                let accepted = try payload.withUnsafeBytes { bytes in
                    try client.writePlaintext(
                        UnsafeRawBufferPointer(rebasing: bytes[offset..<min(offset + chunk, total)]))
                }
                #expect(accepted > 0)
                offset += accepted
            }
            wire.removeAll(keepingCapacity: true)
            client.drainCiphertext(into: &wire)
            server.feedCiphertext(wire)
            while case .bytes(let count) = try readBuffer.withUnsafeMutableBytes({ try server.readPlaintext(into: $0) })
            {
                readBuffer.withUnsafeBytes {
                    received.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<count]))
                }
            }
        }
        #expect(received.count == total)
        #expect(SHA256.hash(received) == SHA256.hash(payload))
    }
}

/// Deterministic, fast test data (not for cryptography).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
