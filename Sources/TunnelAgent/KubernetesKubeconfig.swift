import TunnelClient
import TunnelIO
import TunnelTLS
import TunnelText
import TunnelYAML

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Reads the kubeconfig `tunnel client --kubernetes FILE` names: the node's way to its own API
/// server (`docs/KUBERNETES.md`). Its current context's cluster gives the address and the CA
/// the server is verified against; its user gives the node's credential: a service account's
/// `token` (or `tokenFile`), or k3s.yaml's client certificate. Anything that would weaken the
/// check (`insecure-skip-tls-verify`) or run a program (`exec`, `auth-provider`) is refused.
package enum KubernetesKubeconfig {
    /// Kubeconfigs are small; a larger file is not one.
    package static let sizeLimit = 1 << 20

    package static func upstream(path: String) throws(CommandFailure) -> KubernetesUpstream {
        func fail(_ problem: String) -> CommandFailure { .usage("kubernetes: \(path): \(problem)", .configInvalid) }
        let text: String
        do {
            let bytes = try DurableFile.read(path: path)
            guard bytes.count <= sizeLimit else { throw fail("larger than \(sizeLimit) bytes; is it a kubeconfig?") }
            text = String(decoding: bytes, as: UTF8.self)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw fail("cannot read it (\(oneLine(error))); give the node's k3s.yaml or a service-account kubeconfig")
        }
        let document: YAMLNode?
        do {
            document = try YAMLComposer.compose(text)
        } catch {
            throw fail(StrictYAML.describe(error, source: "kubeconfig"))
        }
        guard let mapping = document?.mapping else { throw fail("empty or not a mapping") }
        let root = Dictionary(mapping.map { ($0.key.string ?? "", $0.value) }, uniquingKeysWith: { first, _ in first })
        guard let current = root["current-context"]?.string, !current.isEmpty else {
            throw fail("has no current-context")
        }
        let context = try named(root["contexts"], current, "context", "context", fail)
        guard let clusterName = context["cluster"]?.string, let userName = context["user"]?.string else {
            throw fail("context \"\(current)\" needs a cluster and a user")
        }
        let cluster = try named(root["clusters"], clusterName, "cluster", "cluster", fail)
        let user = try named(root["users"], userName, "user", "user", fail)
        let directory = directoryPart(of: path)
        let (host, port) = try server(cluster, fail)
        guard cluster["insecure-skip-tls-verify"]?.bool != true else {
            throw fail("insecure-skip-tls-verify is set; the API server must be verified, give its CA")
        }
        guard
            let caPEM = try blob(
                cluster, data: "certificate-authority-data", file: "certificate-authority", directory: directory, fail),
            let ca = try? Certificate.chainFromPEM(caPEM, source: "certificate-authority").first
        else {
            throw fail(
                "cluster \"\(clusterName)\" has no usable certificate-authority(-data); the API server must be verified against it"
            )
        }
        let (identity, token) = try credential(user, userName, directory: directory, fail)
        return KubernetesUpstream(
            host: host, port: port, serverName: cluster["tls-server-name"]?.string ?? host,
            certificateAuthority: ca, clientIdentity: identity, bearerToken: token)
    }

    /// The user's one credential: a client certificate and key, or a token.
    private static func credential(
        _ user: [String: YAMLNode], _ userName: String, directory: String,
        _ fail: (String) -> CommandFailure
    ) throws(CommandFailure) -> (TLSIdentity?, String?) {
        for key in ["exec", "auth-provider", "username", "password"] where user[key] != nil {
            throw fail(
                "user \"\(userName)\" uses \(key), which the node does not run or send; use a token or a client certificate"
            )
        }
        var token = user["token"]?.string
        if token == nil, let file = user["tokenFile"]?.string {
            token = try? String(contentsOfFile: file.hasPrefix("/") ? file : "\(directory)/\(file)", encoding: .utf8)
                .trimmingASCIIWhitespace()
            if token == nil { throw fail("cannot read tokenFile \(file)") }
        }
        let certificate = try blob(
            user, data: "client-certificate-data", file: "client-certificate", directory: directory, fail)
        let key = try blob(user, data: "client-key-data", file: "client-key", directory: directory, fail)
        var identity: TLSIdentity?
        if let certificate, let key {
            do {
                identity = TLSIdentity(
                    chain: try Certificate.chainFromPEM(certificate, source: "client-certificate"),
                    key: try PrivateKey(pem: key, source: "client-key"))
            } catch {
                throw fail("user \"\(userName)\": unusable client certificate or key: \(oneLine(error))")
            }
        }
        guard (token == nil) != (identity == nil) else {
            throw fail(
                "user \"\(userName)\" needs exactly one credential: a token (tokenFile) or a client certificate and key"
            )
        }
        if let token, token.isEmpty || !token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw fail("user \"\(userName)\": the token is empty or holds spaces or control characters")
        }
        return (identity, token)
    }

    /// The `NAME:` entry of a kubeconfig list (`clusters`, `contexts`, `users`), its inner mapping.
    private static func named(
        _ list: YAMLNode?, _ name: String, _ inner: String, _ what: String, _ fail: (String) -> CommandFailure
    ) throws(CommandFailure) -> [String: YAMLNode] {
        guard let entry = list?.sequence?.first(where: { $0["name"]?.string == name }),
            let mapping = entry[inner]?.mapping
        else {
            throw fail("no \(what) named \"\(name)\"")
        }
        return Dictionary(mapping.map { ($0.key.string ?? "", $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// `https://ADDRESS[:PORT]`; `localhost` is taken as 127.0.0.1, other names are refused.
    private static func server(_ cluster: [String: YAMLNode], _ fail: (String) -> CommandFailure) throws(CommandFailure)
        -> (String, UInt16)
    {
        guard let text = cluster["server"]?.string, let url = URLComponents(string: text), url.scheme == "https",
            var host = url.host
        else {
            throw fail("the cluster's server must be an https:// URL")
        }
        if host == "localhost" { host = "127.0.0.1" }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard (try? SocketAddress(ip: host, port: 0)) != nil else {
            throw fail(
                "the server \(text) is not an IP address; the node dials addresses only (k3s.yaml says https://127.0.0.1:6443)"
            )
        }
        return (host, UInt16(url.port ?? 443))
    }

    /// PEM bytes inline (base64 in `data`) or from the file `file` (relative to the kubeconfig).
    private static func blob(
        _ mapping: [String: YAMLNode], data: String, file: String, directory: String,
        _ fail: (String) -> CommandFailure
    ) throws(CommandFailure) -> [UInt8]? {
        if let encoded = mapping[data]?.string {
            guard let decoded = Data(base64Encoded: encoded) else { throw fail("\(data) is not base64") }
            return Array(decoded)
        }
        guard let path = mapping[file]?.string else { return nil }
        do {
            return try DurableFile.read(path: path.hasPrefix("/") ? path : "\(directory)/\(path)")
        } catch {
            throw fail("cannot read \(file) \(path): \(oneLine(error))")
        }
    }
}
