import ArgumentParser
import Foundation
import Logging
import TunnelOperator
import TunnelTLS
import TunnelText

/// `tunnel kubectl NODE -- ARGS`: runs the real kubectl against a node's Kubernetes API through
/// the gateway, as the operator's own identity.
///
/// By default it uses the node's `kubernetes` service (`docs/KUBERNETES.md`): a `KubeProxy` on a
/// free loopback port and a throw-away kubeconfig with no secrets; the node sends each request
/// to its API server impersonating the operator. With `--kubeconfig` (a copy of the node's
/// k3s.yaml) it uses the pass-through TCP service instead (`--service`, default `k3s`): the
/// kubeconfig's server is rewritten to a local forward and `tls-server-name` keeps the k3s
/// certificate verifying, so TLS stays end to end and the gateway sees only ciphertext.
public struct KubectlCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kubectl",
        abstract: "Run kubectl against a node's Kubernetes API through the gateway, as yourself.")

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node") var node: String
    @Option(
        help:
            "Pass-through instead of impersonation: the node's kubeconfig (a copy of its k3s.yaml) for its k3s TCP service"
    ) var kubeconfig: String?
    @Option(help: "The node's pass-through TCP service for its k3s API (with --kubeconfig)") var service = "k3s"
    @Argument(parsing: .postTerminator, help: "kubectl arguments, after --") var kubectlArguments: [String] = []

    public init() {}

    public func run() throws {
        let node = try checkedNodeName(node)
        var passThrough: String?
        if let kubeconfig {
            do {
                passThrough = String(decoding: try DurableFile.read(path: kubeconfig), as: UTF8.self)
            } catch {
                throw CommandFailure.usage(
                    "\(oneLine(error)); give the node's kubeconfig with --kubeconfig, or leave it out to use the node's kubernetes service",
                    .usage)
            }
        }
        let (settings, logger) = try options.settingsAndLogger()
        var commandFailure: CommandFailure?
        let environment = ProcessInfo.processInfo.environment
        let code = try withOperatorSession(settings, logger: logger) { session in
            var temporary: TemporaryKubeconfig?
            let process = Process()
            session.onFinish {
                temporary?.remove()
                if process.isRunning { process.terminate() }
            }
            do {
                let contents: String
                if let passThrough {
                    let forwarder = try session.forward(node: node, service: service, host: "127.0.0.1", port: 0)
                    contents = try kubeconfigRewritten(original: passThrough, localPort: forwarder.address.port)
                } else {
                    let proxy = try session.kubeProxy(host: "127.0.0.1", port: 0)
                    contents = tunnelKubeconfig(
                        nodes: [node], proxy: HostPort(host: "127.0.0.1", port: proxy.address.port))
                }
                let file = try TemporaryKubeconfig(contents: contents)
                temporary = file
                let finish = try session.finishFromAnyThread()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["kubectl"] + kubectlArguments
                process.environment = environment.merging(["KUBECONFIG": file.path]) { $1 }
                process.terminationHandler = { process in finish(process.terminationStatus) }
                try process.run()
            } catch let error as KubeconfigError {
                commandFailure = .usage("\(kubeconfig ?? "kubeconfig"): \(error.message)", .configInvalid)
                session.finish(CommandFailure.usageExitCode)
            } catch {
                commandFailure = .failed("cannot run kubectl: \(oneLine(error))", .programMissing)
                session.finish(CommandFailure.failureExitCode)
            }
        }
        if let commandFailure { throw commandFailure }
        if code != 0 { throw ExitCode(code) }
    }
}

/// A kubeconfig written for one kubectl run: private to the user, removed afterwards.
struct TemporaryKubeconfig {
    let path: String

    init(contents: String) throws {
        var template = Array((NSTemporaryDirectory() + "tunnel-kubeconfig-XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else {
            throw CommandFailure.failed(
                "cannot create a temporary kubeconfig: \(String(cString: strerror(errno)))", .localFile)
        }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        Glibc.close(descriptor)
        guard written == bytes.count else { throw CommandFailure.failed("cannot write \(path)", .localFile) }
    }

    func remove() {
        unlink(path)
    }
}
