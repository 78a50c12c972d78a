import COpenSSL
import Glibc

@testable import TunnelTLS

/// Seconds since 1970 now; tests pass explicit times to issuance, as production code does.
func currentTime() -> Int64 { Int64(time(nil)) }

let day: Int64 = 86_400
let gatewayHost = "gateway.example"
let gatewayIP = "10.0.0.1"
let nodeProtocol = "tunnel-node/1"
let operatorProtocol = "tunnel-operator/1"

/// A throwaway PKI: the node, operator and gateway CAs of one fleet and a CA of another fleet.
struct PKI {
    let nodeCA: CertificateAuthority
    let operatorCA: CertificateAuthority
    let gatewayCA: CertificateAuthority
    let foreignCA: CertificateAuthority

    init() throws {
        let validity = try CertificateValidity(now: currentTime(), lifetime: 365 * day)
        nodeCA = try .createSelfSigned(commonName: "Tunnel Node CA", key: .generateP256(), validity: validity)
        operatorCA = try .createSelfSigned(commonName: "Tunnel Operator CA", key: .generateP256(), validity: validity)
        gatewayCA = try .createSelfSigned(commonName: "Tunnel Gateway CA", key: .generateP256(), validity: validity)
        foreignCA = try .createSelfSigned(commonName: "Other Fleet CA", key: .generateP256(), validity: validity)
    }

    var gatewayTrust: TLSConfiguration.PeerVerification {
        .trustedCAs([
            TrustedCA(.node, certificate: nodeCA.certificate),
            TrustedCA(.operator, certificate: operatorCA.certificate),
        ])
    }

    var clientTrust: TLSConfiguration.PeerVerification {
        .trustedCAs([TrustedCA(.gateway, certificate: gatewayCA.certificate)])
    }

    /// The gateway's identity; its chain includes the gateway CA so pinning clients can find it.
    func gatewayIdentity(validity: CertificateValidity? = nil) throws -> TLSIdentity {
        let key = try PrivateKey.generateP256()
        let leaf = try gatewayCA.issueGatewayCertificate(
            for: key.publicKey(), commonName: "gateway", dnsNames: [gatewayHost], ipAddresses: [gatewayIP],
            validity: validity ?? CertificateValidity(now: currentTime(), lifetime: 30 * day)
        )
        return TLSIdentity(
            chain: [leaf, gatewayCA.certificate], key: key, certificatePath: "/etc/tunnel/gateway.crt",
            keyPath: "/etc/tunnel/gateway.key")
    }

    func clientIdentity(_ identity: TunnelIdentity, issuer: CertificateAuthority, validity: CertificateValidity? = nil)
        throws -> TLSIdentity
    {
        let key = try PrivateKey.generateP256()
        let certificate = try issuer.issueClientCertificate(
            for: key.publicKey(), identity: identity,
            validity: validity ?? CertificateValidity(now: currentTime(), lifetime: day)
        )
        return TLSIdentity(
            chain: [certificate], key: key, certificatePath: "/var/lib/tunnel/node.crt",
            keyPath: "/var/lib/tunnel/node.key")
    }

    func serverContext(protocols: [String] = [nodeProtocol, operatorProtocol], identity: TLSIdentity? = nil) throws
        -> TLSContext
    {
        try TLSContext(
            configuration: TLSConfiguration(
                role: .server, identity: identity ?? gatewayIdentity(), peerVerification: gatewayTrust,
                applicationProtocols: protocols))
    }

    func clientContext(
        _ identity: TLSIdentity?, verification: TLSConfiguration.PeerVerification? = nil,
        protocols: [String] = [nodeProtocol]
    ) throws -> TLSContext {
        try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: identity, peerVerification: verification ?? clientTrust,
                applicationProtocols: protocols))
    }
}

/// Something that speaks TLS over memory: our connection or a raw OpenSSL peer.
protocol MemoryPeer: AnyObject {
    func step()
    func take() -> [UInt8]
    func give(_ bytes: [UInt8])
}

extension TLSConnection: MemoryPeer {
    func step() { advanceHandshake() }
    func take() -> [UInt8] {
        var out: [UInt8] = []
        drainCiphertext(into: &out)
        return out
    }
    func give(_ bytes: [UInt8]) { feedCiphertext(bytes) }
}

/// Moves ciphertext both ways until neither side has anything more to say.
func pump(_ client: MemoryPeer, _ server: MemoryPeer) {
    for _ in 0..<50 {
        client.step()
        let toServer = client.take()
        server.give(toServer)
        server.step()
        let toClient = server.take()
        client.give(toClient)
        client.step()
        if toServer.isEmpty && toClient.isEmpty { return }
    }
}

/// Handshakes a client and a server connection in memory, then lets post-handshake messages
/// (alerts, tickets) flow by having both sides try to read.
func connect(_ clientContext: TLSContext, _ serverContext: TLSContext, host: String = gatewayHost) throws -> (
    client: TLSConnection, server: TLSConnection
) {
    let client = try TLSConnection(context: clientContext, serverHost: host)
    let server = try TLSConnection(context: serverContext)
    pump(client, server)
    return (client, server)
}

/// Reads whatever plaintext is available; nil on would-block, throws what the connection throws.
func readAvailable(_ connection: TLSConnection) throws -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: TLSConnection.recommendedReadBufferSize)
    let result = try buffer.withUnsafeMutableBytes { try connection.readPlaintext(into: $0) }
    switch result {
    case .bytes(let count): return Array(buffer[..<count])
    case .wouldBlock, .closed: return nil
    }
}

extension TLSConnection.HandshakeState {
    var isDone: Bool { if case .done = self { true } else { false } }
    var failure: TLSError? { if case .failed(let error) = self { error } else { nil } }
}

/// A bare OpenSSL endpoint configured by the test, for peers our API deliberately cannot build
/// (a TLS 1.2-only client, a server that issues session tickets).
final class RawPeer: MemoryPeer {
    let context: OpaquePointer
    let ssl: OpaquePointer
    let input: OpaquePointer
    let output: OpaquePointer

    init(server: Bool, configure: (OpaquePointer) -> Void) {
        context = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method())!
        configure(context)
        ssl = SSL_new(context)!
        input = BIO_new(BIO_s_mem())!
        output = BIO_new(BIO_s_mem())!
        tunnel_bio_set_mem_eof_return(input, -1)
        SSL_set_bio(ssl, input, output)
        if server { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    func step() {
        if SSL_is_init_finished(ssl) == 1 {
            var byte: UInt8 = 0
            var read = 0
            _ = SSL_read_ex(ssl, &byte, 1, &read)
        } else {
            _ = SSL_do_handshake(ssl)
        }
        ERR_clear_error()
    }

    func take() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(output)))
        if !out.isEmpty { _ = BIO_read(output, &out, Int32(out.count)) }
        return out
    }

    func give(_ bytes: [UInt8]) {
        if !bytes.isEmpty { _ = BIO_write(input, bytes, Int32(bytes.count)) }
    }

    var handshakeFinished: Bool { SSL_is_init_finished(ssl) == 1 }
}
