import Logging
import TunnelIO
import TunnelState

/// What stopped `Gateway.launch`, with the underlying error, for the command's one line.
public enum GatewayLaunchFailure: Error {
    /// The gateway could not be built (its audit log, store or policy).
    case cannotStart(any Error)
    /// The listening address is in use or not ours to bind.
    case cannotListen(IOError)
    /// The admin socket could not be opened, usually another gateway's (on another data-dir:
    /// one on the same data-dir stops earlier, at its lock).
    case adminSocket(path: String, IOError)
}

extension Gateway {
    /// Builds a gateway on `loop`, listens, and opens its admin socket when one is given, so a
    /// command starts a gateway without handling the loop's types itself.
    public static func launch(
        _ configuration: GatewayConfiguration, store: FleetStore, adminSocket: String?, loop: EventLoop,
        logger: Logger
    ) throws(GatewayLaunchFailure) -> (gateway: Gateway, bound: SocketAddress) {
        let gateway: Gateway
        do {
            gateway = try Gateway(loop: loop, configuration: configuration, store: store, logger: logger)
        } catch {
            throw .cannotStart(error)
        }
        let bound: SocketAddress
        do { bound = try gateway.start() } catch { throw .cannotListen(error) }
        if let adminSocket {
            do { try gateway.startAdminSocket(path: adminSocket) } catch {
                throw .adminSocket(path: adminSocket, error)
            }
        }
        return (gateway, bound)
    }

    /// Reloads the policy on every SIGHUP until the returned watcher is closed; nil when the
    /// signal cannot be watched (the gateway then runs without reloads, as before).
    public func reloadPolicyOnHangup() -> SignalWatcher? {
        try? SignalWatcher(loop: loop, signal: .hangup) { _ in self.reloadPolicy() }
    }
}
