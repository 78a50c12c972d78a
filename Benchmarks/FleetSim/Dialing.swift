import Foundation
import Logging
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Where every virtual peer dials, and the pieces each loop shares.
struct Target: Sendable {
    let gateway: SocketAddress
    let serverName: String
    /// Nodes keep the gateway's session tickets and resume with them, as `tunnel client` does.
    let resumes: Bool
}

/// What one loop thread owns: its loop, the scratch buffers all its connections share (as the
/// gateway's do), and a logger that stays quiet (the simulator counts, it does not log).
final class LoopContext {
    let loop: EventLoop
    let buffers = MuxBuffers()
    let logger: Logger
    let target: Target
    let stats: FleetStats

    init(loop: EventLoop, target: Target, stats: FleetStats) {
        self.loop = loop
        self.target = target
        self.stats = stats
        var logger = Logger(label: "fleet-sim")
        logger.logLevel = .critical
        self.logger = logger
    }

    /// Dials the gateway from `source` (nil: any local address) and starts a client session
    /// with `context` for `delegate`. The completion gets the started connection or a sentence.
    func dial(
        from source: SocketAddress?, context: TLSContext, session: SessionConfiguration = SessionConfiguration(),
        delegate: MuxConnectionDelegate, completion: @escaping (Result<MuxConnection, FleetFailure>) -> Void
    ) {
        var socket: StreamConnection?
        do {
            socket = try StreamConnection.connect(
                loop: loop, to: target.gateway, from: source, timeoutMilliseconds: 10_000
            ) { [self] result in
                guard let connected = socket else { return }
                socket = nil
                switch result {
                case .failure(let error):
                    completion(.failure(FleetFailure("connect failed: \(error)")))
                case .success:
                    do {
                        try connected.setNoDelay(true)
                        let tls = try TLSConnection(context: context, serverHost: target.serverName)
                        let connection = MuxConnection(
                            loop: loop, socket: connected, tls: tls, role: .dialer,
                            configuration: session,
                            handshakeTimeout: .seconds(10), buffers: buffers, logger: logger)
                        connection.delegate = delegate
                        completion(.success(connection))
                        connection.start()
                    } catch {
                        connected.close()
                        completion(.failure(FleetFailure("cannot start TLS: \(error)")))
                    }
                }
            }
        } catch {
            completion(.failure(FleetFailure("cannot dial: \(error)")))
        }
    }
}

/// Source address number `index` counted from `base` (IPv4 only): 127.1.0.1 + 300 = 127.1.1.45.
func sourceAddress(base: String, index: Int) throws -> SocketAddress {
    let parts = base.split(separator: ".").compactMap { UInt32($0) }
    guard parts.count == 4, parts.allSatisfy({ $0 < 256 }) else {
        throw UsageError("--source-base wants an IPv4 address, not \(base)")
    }
    let value = (parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]) &+ UInt32(index)
    return try SocketAddress(ip: "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)", port: 0)
}

func monotonicNanos() -> UInt64 { EventLoop.monotonicNanoseconds }
