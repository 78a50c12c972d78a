import Logging
import TunnelIO
import TunnelRuntime

/// A local listener whose every accepted connection is spliced to its own stream to one
/// service on one node (`tunnel forward`, and `tunnel kubectl --kubeconfig`). Loop-confined.
public final class Forwarder {
    /// Where it listens; with port 0 asked for, the port the system picked.
    public let address: SocketAddress
    private var listener: TCPListener!
    /// Set once the forwarder itself is shutting down: streams it cuts are not worth a warning.
    private var closed = false

    init(
        loop: EventLoop, client: OperatorClient, connection: MuxConnection, node: String, service: String,
        host: String, port: UInt16, interactive: Bool, logger: Logger
    ) throws {
        let address = try SocketAddress(ip: host, port: port)
        weak var forwarder: Forwarder?
        listener = try TCPListener(loop: loop, address: address) { result in
            guard case .success(let socket) = result else { return }
            try? socket.setNoDelay(true)
            client.splice(
                on: connection, node: node, service: service, interactive: interactive, input: socket, output: socket
            ) { failure in
                guard let failure, forwarder?.closed == false else { return }
                logger.warning("forwarded connection ended", metadata: ["reason": "\(failure.message)"])
            }
        }
        self.address = listener.localAddress
        forwarder = self
    }

    public func close() {
        closed = true
        listener.close()
    }
}
