import ArgumentParser
import Foundation
import TunnelClient
import TunnelRuntime
import TunnelTLS

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
        _ = try withOperatorConnection(settings, logger: logger) { loop, client, connection, finish in
            do {
                let proxy = try KubeProxy(
                    loop: loop, client: client, connection: connection, listen: address, logger: logger)
                print("kube-proxy on socks5://\(proxy.address) for the kubeconfig of `tunnel kubeconfig`; Ctrl-C stops")
                fflush(nil)
                return proxy.close
            } catch {
                listenFailure = CommandFailure("cannot listen on \(address): \(oneLine(error))", code: .portInUse)
                finish(CommandFailure.failureExitCode)
                return nil
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
        var failure: CommandFailure?
        _ = try withOperatorConnection(settings, logger: logger) { _, client, connection, finish in
            client.listNodes(on: connection) { result in
                switch result {
                case .success(let list):
                    names = list.nodes.filter { $0.services.contains(TunnelProtocol.kubernetesService) }.map(\.name)
                        .sorted()
                    finish(0)
                case .failure(let error):
                    failure = CommandFailure(error)
                    finish(CommandFailure.failureExitCode)
                }
            }
            return nil
        }
        if let failure { throw failure }
        return names
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
