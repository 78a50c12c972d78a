import Logging
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelText
import TunnelWire

/// A SOCKS5 listener on loopback through which kubectl reaches each node's `kubernetes`
/// service: a kubeconfig from `tunnel kubeconfig` names the cluster `http://NODE` with
/// `proxy-url: socks5://127.0.0.1:PORT`, so kubectl asks this listener for NODE, and each of
/// its connections (keep-alive, exec, port-forward) becomes one stream to that node. One
/// listener serves every node; nothing secret is written anywhere (`docs/KUBERNETES.md`).
///
/// The connection carries plain HTTP between kubectl and here; the tunnel's TLS covers it to
/// the gateway, and the node speaks TLS to its API server. Loop-confined.
public final class KubeProxy {
    /// Where it listens: the port the kubeconfig's `proxy-url` names.
    public let address: SocketAddress
    private var listener: TCPListener!
    private var handshakes: [ObjectIdentifier: StreamConnection] = [:]
    private var closed = false
    /// A client that has not finished its SOCKS request by then is dropped.
    static let handshakeTimeoutMilliseconds: UInt64 = 10_000

    init(
        loop: EventLoop, client: OperatorClient, connection: MuxConnection, host: String, port: UInt16, logger: Logger
    ) throws {
        let address = try SocketAddress(ip: host, port: port)
        weak var proxy: KubeProxy?
        listener = try TCPListener(loop: loop, address: address) { result in
            guard case .success(let socket) = result, let proxy else { return }
            proxy.accepted(socket, loop: loop, client: client, connection: connection, logger: logger)
        }
        self.address = listener.localAddress
        proxy = self
    }

    private func accepted(
        _ socket: StreamConnection, loop: EventLoop, client: OperatorClient, connection: MuxConnection, logger: Logger
    ) {
        try? socket.setNoDelay(true)
        let key = ObjectIdentifier(socket)
        handshakes[key] = socket
        let timer = LoopTimer(loop: loop)
        timer.start(after: Self.handshakeTimeoutMilliseconds) { [weak self] in
            timer.close()
            if self?.handshakes.removeValue(forKey: key) != nil { socket.close() }
        }
        var request = SocksRequest()
        let drop = { [weak self] (reason: String?) in
            timer.close()
            self?.handshakes[key] = nil
            if let reason { logger.warning("kube-proxy: connection refused", metadata: ["reason": "\(reason)"]) }
        }
        do {
            try socket.startReading { [weak self] event in
                guard case .data(let bytes) = event else {
                    drop(nil)
                    socket.close()
                    return
                }
                switch request.feed(bytes) {
                case .needMore(let reply):
                    if !reply.isEmpty { try? socket.write(reply) }
                case .refuse(let reply, let reason):
                    drop(reason)
                    try? socket.write(reply)
                    socket.close()
                case .connect(let reply, let host, _):
                    socket.stopReading()
                    guard let node = nodeName(fromSSHHost: host) else {
                        drop("\"\(host)\" is not a node name")
                        try? socket.write(reply + SocksRequest.refused)
                        socket.close()
                        return
                    }
                    drop(nil)
                    try? socket.write(reply + SocksRequest.succeeded)
                    // Bulk: API calls, watches and logs; a shell wants `tunnel shell`, not kubectl exec.
                    client.splice(
                        on: connection, node: node, service: TunnelProtocol.kubernetesService, interactive: false,
                        input: socket, output: socket
                    ) { failure in
                        guard let failure, self?.closed == false else { return }
                        logger.warning(
                            "kubernetes connection ended",
                            metadata: ["node.name": "\(node)", "reason": "\(failure.message)"])
                    }
                }
            }
        } catch {
            drop(nil)
            socket.close()
        }
    }

    public func close() {
        closed = true
        listener.close()
        for socket in handshakes.values { socket.close() }
        handshakes = [:]
    }
}
