import Logging
import Multiplex
import TunnelIO
import TunnelKube
import TunnelRuntime
import TunnelTLS

/// Where the node's Kubernetes API server is and how the node proves itself to it: read from
/// the kubeconfig given to `tunnel client --kubernetes` (`docs/KUBERNETES.md`).
public struct KubernetesUpstream: Sendable {
    /// An IP address: the client dials addresses, never names a peer could steer.
    public var host: String
    public var port: UInt16
    /// The name (or address) the API server's certificate must carry.
    public var serverName: String
    /// The CA that signed the API server's certificate.
    public var certificateAuthority: Certificate
    /// The node's client certificate and key (k3s.yaml), or nil with a bearer token.
    public var clientIdentity: TLSIdentity?
    /// A service account's token, or nil with a client certificate.
    public var bearerToken: String?

    public init(
        host: String, port: UInt16, serverName: String, certificateAuthority: Certificate,
        clientIdentity: TLSIdentity?, bearerToken: String?
    ) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.certificateAuthority = certificateAuthority
        self.clientIdentity = clientIdentity
        self.bearerToken = bearerToken
    }
}

/// The node's `kubernetes` service: each stream is one HTTP connection from an operator's
/// kubectl, carried to the local API server over TLS with the node's own credential and the
/// identity the gateway asserted in the stream's open (`Impersonate-User`, `Impersonate-Group`).
/// Loop-confined.
public final class KubernetesService {
    public static let serviceName = TunnelProtocol.kubernetesService

    let loop: EventLoop
    let upstream: KubernetesUpstream
    let context: TLSContext
    let logger: Logger
    private var streams: [ObjectIdentifier: KubernetesProxyStream] = [:]
    /// Timeout for reaching the API server.
    static let connectTimeoutMilliseconds: UInt64 = 5_000

    public init(loop: EventLoop, upstream: KubernetesUpstream, logger: Logger) throws {
        self.loop = loop
        self.upstream = upstream
        self.logger = logger
        var configuration = TLSConfiguration(
            role: .client, identity: upstream.clientIdentity,
            peerVerification: .trustedCAs([TrustedCA(.kubernetesAPI, certificate: upstream.certificateAuthority)]),
            applicationProtocols: ["http/1.1"])
        configuration.peerKind = .kubernetesAPIServer
        context = try TLSContext(configuration: configuration)
    }

    /// Serves a stream the gateway opened; `identity` is what the gateway asserted. Without one
    /// (an older gateway) there is no one to act as, so the stream is refused.
    func serve(_ stream: StreamID, on connection: MuxConnection, identity: KubernetesIdentity?) {
        guard let identity, !identity.groups.isEmpty else {
            logger.notice("kubernetes stream without an asserted identity refused")
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        let rewrite = ImpersonationRewrite(
            user: identity.user, groups: identity.groups, bearerToken: upstream.bearerToken)
        do {
            let proxy = try KubernetesProxyStream(
                service: self, connection: connection, stream: stream, rewrite: rewrite
            ) { [unowned self] proxy in
                streams[ObjectIdentifier(proxy)] = nil
            }
            streams[ObjectIdentifier(proxy)] = proxy
        } catch {
            logger.notice("cannot reach the Kubernetes API", metadata: ["error": "\(error)"])
            connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
        }
    }
}
