import Foundation
import TunnelOperator
import TunnelText
import Yams

/// An `~/.ssh/config` block so that `ssh USER@NODE.tunnel` goes through the gateway.
///
/// ```
/// Host *.tunnel
///     ProxyCommand '/usr/local/bin/tunnel' proxy --config '/home/ann/.config/tunnel/operator.yaml' %h ssh
///     UserKnownHostsFile ~/.ssh/known_hosts.tunnel
/// ```
///
/// Choices (OpenSSH 9.2, `man ssh_config`, TOKENS):
/// - `%h`, not `%n`: ProxyCommand accepts `%h`, `%n`, `%p`, `%r`. `%h` is the host name ssh
///   actually uses after `Hostname` and lower-casing, and it is the same name ssh uses to look
///   up the host key in known_hosts. Routing by `%h` therefore guarantees that the node we
///   connect to and the name whose host key is checked are the same string. `%n` is the raw
///   command-line text and can differ (a `Hostname` line, upper case), which would check one
///   node's key while routing to another. `tunnel proxy` strips the `.tunnel` suffix
///   (`nodeName(fromSSHHost:)`); node names are lower-case DNS labels, so lower-casing is harmless.
/// - No `HostKeyAlias`: it accepts no tokens, so `HostKeyAlias %h` would be the literal text
///   `%h` for every node and all nodes would share one known_hosts entry. Without it,
///   known_hosts entries are already keyed by `%h` (`node-17.tunnel`).
/// - `UserKnownHostsFile` (it does accept tokens and `~`) keeps fleet host keys in their own
///   file, so re-provisioned nodes can be cleaned up without touching other hosts' keys.
/// - `StrictHostKeyChecking` is left at its default (ask on first use, refuse on change).
/// - `%p` is not passed: the gateway dials only services by name; `ssh -p` has no effect.
/// - Paths are single-quoted for `sh -c` (ssh runs ProxyCommand through the shell) and `%` is
///   doubled so ssh does not read it as a token.
/// `text` quoted for the shell that runs an ssh_config ProxyCommand, with `%` escaped for ssh.
func sshConfigQuoted(_ text: String) -> String {
    shellQuoted(text, always: true).replacingOccurrences(of: "%", with: "%%")
}

/// `text` as one word for a POSIX shell: as it is when it holds only characters no shell treats
/// specially (unless `always`), else in single quotes.
func shellQuoted(_ text: String, always: Bool = false) -> String {
    let plain =
        !text.isEmpty
        && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "@%+=:,./_-".utf8.contains(byte)
            }
        }
    if plain && !always { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// The command line `tunnel shell NODE -- WORDS` asks the node's login shell to run: one word is
/// a command line as it is (`-- 'uptime; exit 3'`), several are quoted word by word, so
/// `-- sh -c 'exit 3'` runs `sh` with the two arguments given (ssh would join them with spaces,
/// and `sh -c exit 3` exits 0). Nil for no words: an interactive shell.
public func shellCommandLine(_ words: [String]) -> String? {
    switch words.count {
    case 0: nil
    case 1: words[0]
    default: words.map { shellQuoted($0) }.joined(separator: " ")
    }
}

/// `knownHosts` and `identity` come from the operator settings (`ssh-known-hosts`, `ssh-identity`),
/// so the block and `tunnel ssh` check the same host keys and offer the same key.
public func sshConfigBlock(
    tunnelPath: String, configPath: String, knownHosts: String = "~/.ssh/known_hosts.tunnel",
    identity: String? = nil
) -> String {
    """
    # Added by `tunnel ssh-config`: `ssh USER@NODE.tunnel` reaches NODE's sshd through the gateway.
    Host *\(sshHostSuffix)
        ProxyCommand \(sshConfigQuoted(tunnelPath)) proxy --config \(sshConfigQuoted(configPath)) %h ssh
        UserKnownHostsFile \(knownHosts.hasPrefix("~/") ? knownHosts : sshConfigQuoted(knownHosts))

    """ + (identity.map { "    IdentityFile \(sshConfigQuoted($0))\n" } ?? "")
}

/// Errors of `kubeconfigRewritten`.
public struct KubeconfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Rewrites a node's kubeconfig to reach its k3s API through a local tunnel port.
///
/// The cluster of the current context gets `server: https://127.0.0.1:PORT` and
/// `tls-server-name:` the original server's host (or `tlsServerName`), so the k3s serving
/// certificate is still verified against the name it was issued for. Everything else is kept.
/// Only the current context's cluster changes; other clusters in the file stay as they are.
public func kubeconfigRewritten(original: String, localPort: UInt16, tlsServerName: String? = nil)
    throws(KubeconfigError) -> String
{
    func fail(_ message: String) -> KubeconfigError { KubeconfigError(message: message) }
    guard localPort > 0 else { throw fail("the local port must be 1–65535") }
    let parsed: Node?
    do { parsed = try Yams.compose(yaml: original) } catch {
        throw fail(describeYamsError(error, source: "kubeconfig"))
    }
    guard var root = parsed?.mapping else { throw fail("the kubeconfig is empty or not a mapping") }
    guard let current = root["current-context"]?.string, !current.isEmpty else {
        throw fail("the kubeconfig has no current-context; run `kubectl config use-context NAME` on the node first")
    }
    guard let contexts = root["contexts"]?.sequence,
        let context = contexts.first(where: { $0.mapping?["name"]?.string == current }),
        let clusterName = context.mapping?["context"]?.mapping?["cluster"]?.string
    else {
        throw fail("the kubeconfig has no context \"\(current)\" with a cluster (current-context points at nothing)")
    }
    guard var clusters = root["clusters"]?.sequence,
        let index = clusters.firstIndex(where: { $0.mapping?["name"]?.string == clusterName }),
        var entry = clusters[index].mapping,
        var cluster = entry["cluster"]?.mapping
    else {
        throw fail("the kubeconfig has no cluster \"\(clusterName)\" (used by context \"\(current)\")")
    }
    guard let server = cluster["server"]?.string, let components = URLComponents(string: server),
        let host = components.host, !host.isEmpty
    else {
        throw fail("cluster \"\(clusterName)\" has no usable server URL")
    }
    // URLComponents keeps the brackets of an IPv6 host; a TLS name is the bare address.
    let originalHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    let name = tlsServerName ?? (cluster["tls-server-name"]?.string ?? originalHost)
    cluster["server"] = Node("https://127.0.0.1:\(localPort)")
    cluster["tls-server-name"] = Node(name)
    entry["cluster"] = .mapping(cluster)
    clusters[index] = .mapping(entry)
    root["clusters"] = .sequence(clusters)
    do {
        return try Yams.serialize(node: .mapping(root))
    } catch {
        throw fail("could not write the kubeconfig: \(oneLine(error))")
    }
}

/// A Yams parse error as `source:LINE: not valid YAML: PROBLEM`, as `StrictYAML` words libyaml's.
private func describeYamsError(_ error: any Error, source: String) -> String {
    if let yaml = error as? YamlError {
        switch yaml {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return "\(source):\(mark.line): not valid YAML: \(problem)"
        default:
            break
        }
    }
    return "\(source): not valid YAML: \(oneLine(error))"
}
