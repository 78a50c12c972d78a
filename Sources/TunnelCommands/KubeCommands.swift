import ArgumentParser
import Foundation
import TunnelOperator
import TunnelRuntime
import TunnelTLS
import TunnelText

/// The kube-proxy's usual address; `tunnel kubeconfig` and `tunnel kube-proxy` agree on it.
let defaultKubeProxyAddress = "127.0.0.1:8443"

/// `tunnel kube-proxy`: the local SOCKS5 listener the kubeconfig of `tunnel kubeconfig` points at.
public struct KubeProxyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kube-proxy",
        abstract:
            "Serve the kubeconfig of `tunnel kubeconfig`: kubectl reaches every node's Kubernetes API through it, as you."
    )

    @OptionGroup var options: OperatorOptions
    @Option(help: "Loopback address to listen on") var listen = defaultKubeProxyAddress

    public init() {}

    public func run() throws {
        let address = try loopbackAddress(listen)
        let (settings, logger) = try options.settingsAndLogger()
        var listenFailure: CommandFailure?
        _ = try withOperatorSession(settings, logger: logger) { session in
            do {
                let proxy = try session.kubeProxy(host: address.host, port: address.port)
                print("kube-proxy on socks5://\(proxy.address) for the kubeconfig of `tunnel kubeconfig`; Ctrl-C stops")
                fflush(nil)
            } catch {
                listenFailure = CommandFailure("cannot listen on \(address): \(oneLine(error))", code: .portInUse)
                session.finish(CommandFailure.failureExitCode)
            }
        }
        if let listenFailure { throw listenFailure }
    }
}

/// `tunnel kubeconfig NODE... | --all`: a kubeconfig with one context per node and no secrets.
public struct KubeconfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kubeconfig",
        abstract: "Write a kubeconfig with one context per node (no secrets), for use with `tunnel kube-proxy`.")

    @OptionGroup var options: OperatorOptions
    @Argument(help: "Nodes to make contexts for") var nodes: [String] = []
    @Flag(help: "Every node you may reach that offers the kubernetes service (asks the gateway)") var all = false
    @Option(help: "The address `tunnel kube-proxy` listens on") var proxy = defaultKubeProxyAddress
    @Option(name: [.short, .long], help: "Write to this file (0600) instead of standard output") var output: String?

    public init() {}

    public func run() throws {
        let proxyAddress = try loopbackAddress(proxy)
        guard all != !nodes.isEmpty else {
            throw CommandFailure.usage(
                "name the nodes (tunnel kubeconfig node-17 node-18) or give --all, not both", .usage)
        }
        var names = try nodes.map { name throws(CommandFailure) in try checkedNodeName(name) }
        if all { names = try reachableKubernetesNodes() }
        guard !names.isEmpty else {
            throw CommandFailure.failed(
                "none of the nodes you may reach offers the kubernetes service (`tunnel nodes` lists each node's services)",
                .unknownService)
        }
        let text = tunnelKubeconfig(nodes: names, proxy: proxyAddress)
        guard let output else { return print(text, terminator: "") }
        do {
            try DurableFile.write(path: output, bytes: Array(text.utf8), mode: 0o600)
        } catch {
            throw CommandFailure.failed("cannot write \(output): \(oneLine(error))", .localFile)
        }
        print(
            "wrote \(output): contexts \(names.joined(separator: ", ")); run `tunnel kube-proxy --listen \(proxyAddress)` and `kubectl --kubeconfig \(output) --context \(names[0]) get pods`"
        )
    }

    private func reachableKubernetesNodes() throws -> [String] {
        let (settings, logger) = try options.settingsAndLogger()
        var names: [String] = []
        _ = try withOperatorSession(settings, logger: logger) { session in
            // Page by page, keeping only the names of the nodes that offer the service.
            session.listNodes { page in
                names += page.nodes.filter { $0.services.contains(TunnelProtocol.kubernetesService) }.map(\.name)
            } completion: { error in
                if let error { session.fail(error) } else { session.finish(0) }
            }
        }
        return names.sorted()
    }
}

/// A loopback HOST:PORT: the kube-proxy must not be reachable from other machines.
func loopbackAddress(_ text: String) throws(CommandFailure) -> HostPort {
    let address: HostPort
    do { address = try HostPort.parse(text, example: defaultKubeProxyAddress, allowAnyPort: true) } catch {
        throw .usage("\(text): \(error.text)", .usage)
    }
    guard address.host == "127.0.0.1" || address.host == "::1" else {
        throw .usage(
            "\(text): the kube-proxy listens on loopback only (127.0.0.1 or ::1), so other machines cannot act as you",
            .usage)
    }
    return address
}

/// A kubeconfig with one context per node, each reaching the node's `kubernetes` service through
/// the kube-proxy at `proxy`; no credentials in it (the operator's tunnel login is the credential).
func tunnelKubeconfig(nodes: [String], proxy: HostPort, namespace: String = "default") -> String {
    var text =
        "# Written by `tunnel kubeconfig`: kubectl reaches each node through `tunnel kube-proxy --listen \(proxy)`.\n"
    text +=
        "# No secrets here: you act as your tunnel identity, in the Kubernetes groups the gateway's policy gives you.\n"
    text += "apiVersion: v1\nkind: Config\nclusters:\n"
    for node in nodes {
        text += "- name: tunnel-\(node)\n  cluster:\n    server: http://\(node)\n    proxy-url: socks5://\(proxy)\n"
    }
    text += "contexts:\n"
    for node in nodes {
        text +=
            "- name: \(node)\n  context:\n    cluster: tunnel-\(node)\n    user: tunnel\n    namespace: \(namespace)\n"
    }
    if let first = nodes.first { text += "current-context: \(first)\n" }
    text += "users:\n- name: tunnel\n  user: {}\n"
    return text
}
