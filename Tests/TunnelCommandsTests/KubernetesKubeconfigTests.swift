import Foundation
import Testing
import TunnelTLS

@testable import TunnelCommands

/// The node's `--kubernetes` kubeconfig: what it takes, and each thing it refuses with the file named.
@Suite struct KubernetesKubeconfigTests {
    /// A kubeconfig for the server `server` with a real CA and the given user mapping (YAML flow).
    func kubeconfig(server: String = "https://127.0.0.1:6443", cluster extra: String = "", user: String) throws
        -> String
    {
        let key = try PrivateKey.generateP256()
        let ca = try CertificateAuthority.createSelfSigned(
            commonName: "k3s-server-ca", key: key,
            validity: CertificateValidity(now: Int64(Date().timeIntervalSince1970), lifetime: 86_400))
        let caData = Data(try ca.certificate.pem()).base64EncodedString()
        return """
            apiVersion: v1
            kind: Config
            clusters: [{name: local, cluster: {server: "\(server)", certificate-authority-data: \(caData)\(extra)}}]
            users: [{name: node, user: \(user)}]
            contexts: [{name: node, context: {cluster: local, user: node}}]
            current-context: node
            """
    }

    /// What the node reads from `text`: (host, port, server name, token, has a client certificate).
    func load(_ text: String) throws -> (String, UInt16, String, String?, Bool) {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/kubeconfig"
            try writeFile(path, text)
            let upstream = try KubernetesKubeconfig.upstream(path: path)
            return (
                upstream.host, upstream.port, upstream.serverName, upstream.bearerToken, upstream.clientIdentity != nil
            )
        }
    }

    @Test func aServiceAccountToken() throws {
        let (host, port, serverName, token, hasCertificate) = try load(try kubeconfig(user: "{token: abc.def}"))
        #expect(host == "127.0.0.1" && port == 6443 && serverName == "127.0.0.1")
        #expect(token == "abc.def" && !hasCertificate)
    }

    @Test func localhostAndTLSServerName() throws {
        let (host, port, serverName, _, _) = try load(
            try kubeconfig(
                server: "https://localhost:16443", cluster: ", tls-server-name: kubernetes", user: "{token: t}"))
        #expect(host == "127.0.0.1" && port == 16443 && serverName == "kubernetes")
    }

    @Test(arguments: [
        ("https://k3s.example.com:6443", "", "{token: t}", "is not an IP address"),
        ("http://127.0.0.1:6443", "", "{token: t}", "must be an https:// URL"),
        ("https://127.0.0.1:6443", ", insecure-skip-tls-verify: true", "{token: t}", "insecure-skip-tls-verify is set"),
        ("https://127.0.0.1:6443", "", "{exec: {command: aws}}", "uses exec, which the node does not run"),
        ("https://127.0.0.1:6443", "", "{}", "needs exactly one credential"),
        ("https://127.0.0.1:6443", "", "{token: \"a b\"}", "the token is empty or holds spaces"),
    ])
    func refusals(server: String, cluster: String, user: String, problem: String) throws {
        let text = try kubeconfig(server: server, cluster: cluster, user: user)
        let message = failure { try load(text) }?.message ?? ""
        #expect(message.hasPrefix("kubernetes: /"))
        #expect(message.contains(problem), "\(message)")
    }
}
