import Multiplex
import TunnelTLS

/// Scratch memory for every `MuxConnection` on one loop: the frames pulled from a session, filled
/// and handed to OpenSSL within a single callback. A loop runs one callback at a time, so one
/// buffer serves all of a gateway's connections instead of one per idle node. (Received plaintext
/// needs none: it is decrypted straight into the array its data events slice.)
public final class MuxBuffers {
    var plaintext: [UInt8] = []

    public init() {
        plaintext.reserveCapacity(MuxConnection.transmitChunk + Limits.maxDataPayload + 64)
    }
}

@available(*, unavailable, message: "MuxBuffers belong to one loop's thread")
extension MuxBuffers: Sendable {}

extension TLSConnection.HandshakeState {
    var isDone: Bool {
        if case .done = self { true } else { false }
    }
}
