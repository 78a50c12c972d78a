import Multiplex
import TunnelEdgeCore
import TunnelRuntime
import TunnelTLS

/// Where a client dials and how it proves who it is.
public struct GatewayEndpoint: Sendable {
    public var host: String
    public var port: UInt16
    /// Every replica a node may dial, `host:port` first; one entry unless `--gateway` lists
    /// several. The node spreads and fails over across them (`GatewayRotation`).
    public var replicas: [(host: String, port: UInt16)]
    /// The name the gateway's certificate must carry; the host itself unless set.
    public var serverName: String
    public var identity: TLSIdentity
    /// The CA that signed the gateway's certificate.
    public var gatewayCA: Certificate

    public init(host: String, port: UInt16, serverName: String? = nil, identity: TLSIdentity, gatewayCA: Certificate) {
        self.host = host
        self.port = port
        replicas = [(host, port)]
        self.serverName = serverName ?? host
        self.identity = identity
        self.gatewayCA = gatewayCA
    }

    /// Keeps the gateway's session tickets in memory, so the next dial resumes (the gateway
    /// issues them to nodes only); a new identity gets a new context, and starts over.
    package func tlsContext(applicationProtocol: String) throws -> TLSContext {
        var configuration = TLSConfiguration(
            role: .client, identity: identity,
            peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: gatewayCA)]),
            applicationProtocols: [applicationProtocol])
        configuration.resumption = .keepSessions
        return try TLSContext(configuration: configuration)
    }
}

/// A service the client itself provides on a stream (the recorded `shell`, device `logs`),
/// rather than a local address it dials. It owns the stream once `serve` is called: it must
/// accept or reset it. Loop-confined.
public protocol BuiltInService: AnyObject {
    func serve(_ stream: StreamID, on connection: MuxConnection, parameters: [String: String])
}

/// A service the node offers: a name the gateway may ask for, and the address only the node knows.
public struct LocalService: Sendable, Equatable {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
}

public struct EdgeClientConfiguration {
    public var gateway: GatewayEndpoint
    /// Name → local address. The client dials only these: the gateway can ask for a name, never
    /// for an address, so nothing it sends can turn the node into a pivot into the plant network.
    public var services: [String: LocalService]
    /// Services the client provides itself, by name; their names never clash with `services`.
    public var builtInServices: [String: any BuiltInService] = [:]
    /// The API server behind the `kubernetes` service (`tunnel client --kubernetes`), if configured.
    public var kubernetes: KubernetesUpstream?
    public var labels: [String: String]
    /// Where renewed certificates are saved; nil keeps them in memory only.
    public var credentialFiles: NodeCredentialFiles?
    public var session = NodeKeepalive.session
    public var handshakeTimeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(10)
    public var serviceConnectTimeout: Duration = .seconds(5)
    /// When to dial again after a loss; it starts over once the gateway accepted the node.
    public var reconnect = ReconnectSchedule()
    /// After the gateway said another machine with this node's identity took the session over
    /// (GOAWAY `replaced`): a slower backoff whose waits really grow (at least half the ceiling),
    /// so two machines sharing one key slow each other down instead of spinning; the newest
    /// session still always wins. It starts over only after a session outlived its longest wait.
    public var replacedBackoff = Backoff(base: .seconds(5), cap: .seconds(300), floor: 0.5)
    /// The version announced to the gateway (the CLI adds the source commit).
    public var softwareVersion = TunnelProtocol.softwareVersion

    public init(
        gateway: GatewayEndpoint, services: [String: LocalService], labels: [String: String] = [:],
        credentialFiles: NodeCredentialFiles? = nil
    ) {
        self.gateway = gateway
        self.services = services
        self.labels = labels
        self.credentialFiles = credentialFiles
    }
}
