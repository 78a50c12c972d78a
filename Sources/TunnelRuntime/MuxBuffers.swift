import Multiplex
import TunnelTLS

/// Scratch memory for every `MuxConnection` on one loop. Each use fills and empties it within a
/// single callback (TLS plaintext out of OpenSSL, frames into OpenSSL),
/// and a loop runs one callback at a time, so one set serves all of a gateway's connections
/// instead of 330 KiB per idle node.
public final class MuxBuffers {
    let scratch: UnsafeMutableRawBufferPointer
    var plaintext: [UInt8] = []

    public init() {
        scratch = .allocate(byteCount: 256 * 1024, alignment: 16)
        plaintext.reserveCapacity(MuxConnection.transmitChunk + Limits.maxDataPayload + 64)
    }

    deinit {
        scratch.deallocate()
    }
}

@available(*, unavailable, message: "MuxBuffers belong to one loop's thread")
extension MuxBuffers: Sendable {}

extension TLSConnection.HandshakeState {
    var isDone: Bool {
        if case .done = self { true } else { false }
    }
}
