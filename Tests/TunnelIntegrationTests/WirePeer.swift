import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// A hostile peer on a real socket: real TCP and a real TLS 1.3 handshake, then whatever bytes
/// the test writes, frames or garbage. What the other side sends is decoded into `frames` until
/// the first frame that does not decode. Loop-confined; the test closes it.
final class WirePeer {
    let socket: StreamConnection
    let tls: TLSConnection
    private(set) var handshake: TLSConnection.HandshakeState = .inProgress
    /// The socket ended or failed, or TLS closed.
    private(set) var ended = false
    private(set) var frames: [Frame] = []
    private var decoder = FrameDecoder()
    private var decodingFailed = false
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    /// Plaintext written before the handshake finished, sent once it has.
    private var pending: [UInt8] = []

    init(socket: StreamConnection, tls: TLSConnection) throws {
        self.socket = socket
        self.tls = tls
        try socket.startReading { [unowned self] event in
            switch event {
            case .data(let bytes):
                tls.feedCiphertext(bytes)
                pump()
            case .end, .error:
                ended = true
            }
        }
    }

    /// Dials the gateway at `port` with `identity` and offers `protocols` in ALPN.
    static func dial(
        loop: EventLoop, port: UInt16, identity: TLSIdentity?, gatewayCA: Certificate,
        protocols: [String], connected: @escaping (WirePeer?) -> Void
    ) throws {
        let context = try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: identity,
                peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: gatewayCA)]),
                applicationProtocols: protocols))
        var socket: StreamConnection?
        socket = try StreamConnection.connect(loop: loop, to: try SocketAddress(ip: "127.0.0.1", port: port)) {
            result in
            guard case .success = result, let socket,
                let tls = try? TLSConnection(context: context, serverHost: "127.0.0.1"),
                let peer = try? WirePeer(socket: socket, tls: tls)
            else { return connected(nil) }
            peer.pump()
            connected(peer)
        }
    }

    var isEstablished: Bool {
        if case .done = handshake { true } else { false }
    }

    /// GOAWAY codes received, in order.
    var goAways: [ErrorCode] {
        frames.compactMap { if case .goAway(_, let code, _) = $0 { code } else { nil } }
    }

    /// RESET codes received per stream.
    var resets: [StreamID: ErrorCode] {
        var result: [StreamID: ErrorCode] = [:]
        for case .reset(let id, let code) in frames { result[id] = code }
        return result
    }

    func send(_ frames: Frame...) {
        var bytes: [UInt8] = []
        for frame in frames { FrameEncoder.append(frame, to: &bytes) }
        send(bytes)
    }

    func send(_ bytes: [UInt8]) {
        pending += bytes
        pump()
    }

    func close() {
        socket.close()
    }

    private func pump() {
        if case .inProgress = handshake { handshake = tls.advanceHandshake() }
        if isEstablished {
            if !pending.isEmpty, (try? tls.writePlaintext(pending)) != nil { pending = [] }
            readPlaintext()
        }
        var out: [UInt8] = []
        tls.drainCiphertext(into: &out)
        if !out.isEmpty, !socket.isClosed { try? socket.write(out) }
    }

    private func readPlaintext() {
        while true {
            let result = scratch.withUnsafeMutableBytes { try? tls.readPlaintext(into: $0) }
            switch result {
            case .bytes(let count)?:
                guard !decodingFailed else { continue }
                decoder.append(scratch[..<count])
                do {
                    while let frame = try decoder.next() { frames.append(frame) }
                } catch {
                    decodingFailed = true
                }
            case .closed?, nil:
                ended = true
                return
            case .wouldBlock?:
                return
            }
        }
    }
}

extension Frame {
    /// Our HELLO as any version-1 peer sends it.
    static let helloV1 = Frame.hello(
        HelloFrame(
            minVersion: 1, maxVersion: 1, maxConcurrentStreams: 100, initialStreamWindow: 262_144,
            connectionWindow: 1 << 26))
}

extension WirePeer {
    /// A stand-in gateway on loopback: each node that dials it completes a real TLS handshake with
    /// `identity` (the gateway's certificate) and becomes a `WirePeer` handed to `accepted`.
    static func listen(
        loop: EventLoop, identity: TLSIdentity, nodeCA: Certificate,
        accepted: @escaping (WirePeer) -> Void
    ) throws -> TCPListener {
        let context = try TLSContext(
            configuration: TLSConfiguration(
                role: .server, identity: identity,
                peerVerification: .trustedCAs([TrustedCA(.node, certificate: nodeCA)]),
                applicationProtocols: [TunnelProtocol.nodeALPN]))
        return try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let socket) = result else { return }
            guard let tls = try? TLSConnection(context: context), let peer = try? WirePeer(socket: socket, tls: tls)
            else {
                socket.close()
                return
            }
            accepted(peer)
        }
    }

    /// Whether the stream's far side finished its direction (ACCEPT or DATA with FIN).
    func finished(_ id: StreamID) -> Bool {
        frames.contains { frame in
            switch frame {
            case .accept(id, _, true), .data(id, _, true): true
            default: false
            }
        }
    }

    func accepted(_ id: StreamID) -> Bool {
        frames.contains { if case .accept(id, _, _) = $0 { true } else { false } }
    }
}
