import Foundation
import Testing
import TunnelTLS

@testable import TunnelCommands

/// The files `tunnel ca` and `tunnel login` write, used as they are by the TLS layer: the
/// gateway trusts both CAs, the client side trusts gateway-ca.crt and checks the gateway's name.
@Suite struct EndToEndTLSTests {
    let now = Int64(Date().timeIntervalSince1970)

    func handshake(
        gatewayDir dir: String, clientCert: String, clientKey: String, gatewayCA: String, host: String = "localhost"
    ) throws -> (TLSConnection, TLSConnection) {
        let nodeCA = try Certificate.fromPEM(try DurableFile.read(path: "\(dir)/node-ca.crt"))
        let operatorCA = try Certificate.fromPEM(try DurableFile.read(path: "\(dir)/operator-ca.crt"))
        let serverContext = try TLSContext(
            configuration: TLSConfiguration(
                role: .server,
                identity: try TLSIdentity.load(certificatePath: "\(dir)/gateway.crt", keyPath: "\(dir)/gateway.key"),
                peerVerification: .trustedCAs([
                    TrustedCA(.node, certificate: nodeCA), TrustedCA(.operator, certificate: operatorCA),
                ]),
                applicationProtocols: ["test/1"]))
        let clientContext = try TLSContext(
            configuration: TLSConfiguration(
                role: .client,
                identity: try TLSIdentity.load(certificatePath: clientCert, keyPath: clientKey),
                peerVerification: .trustedCAs([
                    TrustedCA(.gateway, certificate: try Certificate.fromPEM(try DurableFile.read(path: gatewayCA)))
                ]),
                applicationProtocols: ["test/1"]))
        let client = try TLSConnection(context: clientContext, serverHost: host)
        let server = try TLSConnection(context: serverContext)
        var buffer = [UInt8](repeating: 0, count: TLSConnection.recommendedReadBufferSize)
        for _ in 0..<20 {
            _ = client.advanceHandshake()
            _ = server.advanceHandshake()
            var toServer: [UInt8] = [], toClient: [UInt8] = []
            client.drainCiphertext(into: &toServer)
            server.drainCiphertext(into: &toClient)
            if !toServer.isEmpty { server.feedCiphertext(toServer) }
            if !toClient.isEmpty { client.feedCiphertext(toClient) }
            if case .done = server.handshakeState {
                _ = try buffer.withUnsafeMutableBytes { try server.readPlaintext(into: $0) }
            }
            if case .done = client.handshakeState {
                _ = try buffer.withUnsafeMutableBytes { try client.readPlaintext(into: $0) }
            }
            if toServer.isEmpty && toClient.isEmpty { break }
        }
        return (client, server)
    }

    @Test func nodeAndOperatorFilesWorkWithTheTLSLayer() throws {
        try withTemporaryDirectory { dir in
            let ca = "\(dir)/ca"
            _ = try CADirectory.create(.init(directory: ca, now: now))
            _ = try TestIssuer.issueNode(name: "node-17", caDirectory: ca, outputDirectory: "\(dir)/node", now: now)
            let (_, server) = try handshake(
                gatewayDir: ca, clientCert: "\(dir)/node/node-17.crt", clientKey: "\(dir)/node/node-17.key",
                gatewayCA: "\(dir)/node/gateway-ca.crt")
            #expect(server.verifiedBy?.label == "node CA")
            #expect(server.peerIdentity == (try TunnelIdentity(role: .node, name: "node-17")))

            _ = try TestIssuer.issueOperatorBundle(
                name: "alice", caDirectory: ca, gateway: HostPort(host: "localhost", port: 7443),
                serverName: nil, outputPath: "\(dir)/alice.yaml", now: now)
            let login = try OperatorLogin.install(
                bundlePath: "\(dir)/alice.yaml", configDirectory: "\(dir)/cfg", now: now)
            let op = try OperatorSettings(
                try SettingsLoader.load(
                    Schemas.operator, SettingsInput(configPath: "\(dir)/cfg/operator.yaml", environment: ["HOME": dir]))
            )
            #expect(op.serverName == "localhost")
            let (_, opServer) = try handshake(
                gatewayDir: ca, clientCert: op.cert, clientKey: op.key, gatewayCA: op.gatewayCA, host: op.serverName)
            #expect(opServer.verifiedBy?.label == "operator CA")
            #expect(opServer.peerIdentity == login.identity)
        }
    }
}
