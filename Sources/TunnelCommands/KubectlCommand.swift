import ArgumentParser
import Foundation
import Logging
import TunnelClient
import TunnelIO
import TunnelTLS

/// `tunnel kubectl NODE -- ARGS`: forwards the node's k3s API to a free local port and runs the
/// real kubectl against it. The kubeconfig's server is rewritten to that port and
/// `tls-server-name` keeps the k3s certificate verifying, so TLS to the API stays end to end:
/// the gateway only ever sees ciphertext.
public struct KubectlCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "kubectl", abstract: "Run kubectl against a node's k3s API through the gateway.")

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node") var node: String
    @Option(help: "kubeconfig for the node's k3s (default: $KUBECONFIG, else ~/.kube/config)") var kubeconfig: String?
    @Option(help: "The node's service name for its k3s API") var service = "k3s"
    @Argument(parsing: .postTerminator, help: "kubectl arguments, after --") var kubectlArguments: [String] = []

    public init() {}

    public func run() throws {
        let node = try checkedNodeName(node)
        let environment = ProcessInfo.processInfo.environment
        let source = kubeconfig ?? environment["KUBECONFIG"]?.split(separator: ":").first.map(String.init)
            ?? "\(environment["HOME"] ?? "~")/.kube/config"
        let original: String
        do {
            original = String(decoding: try DurableFile.read(path: source), as: UTF8.self)
        } catch {
            throw CommandFailure.usage("\(oneLine(error)); give the node's kubeconfig with --kubeconfig (a copy of its /etc/rancher/k3s/k3s.yaml)")
        }
        let (settings, logger) = try options.settingsAndLogger()
        var message: String?
        let code = try withOperatorConnection(settings, logger: logger) { loop, client, connection, finish in
            var forwarder: Forwarder?
            var temporary: TemporaryKubeconfig?
            var waker: EventLoop.Waker?
            let process = Process()
            let teardown = {
                waker?.close()
                forwarder?.close()
                temporary?.remove()
                if process.isRunning { process.terminate() }
            }
            do {
                let listener = try Forwarder(loop: loop, client: client, connection: connection, node: node, service: service,
                                             listen: HostPort(host: "127.0.0.1", port: 0), logger: logger)
                forwarder = listener
                let file = try TemporaryKubeconfig(contents: try kubeconfigRewritten(original: original, localPort: listener.address.port))
                temporary = file
                let wakeUp = try EventLoop.Waker(loop: loop)
                waker = wakeUp
                let done = LoopBound({ (status: Int32) in finish(status) }, loop: loop)
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["kubectl"] + kubectlArguments
                process.environment = environment.merging(["KUBECONFIG": file.path]) { $1 }
                process.terminationHandler = { process in
                    let status = process.terminationStatus
                    _ = wakeUp.execute { done.value(status) }
                }
                try process.run()
                return teardown
            } catch let error as KubeconfigError {
                message = "\(source): \(error.message)"
                teardown()
                finish(CommandFailure.usageExitCode)
            } catch {
                message = "cannot run kubectl: \(oneLine(error))"
                teardown()
                finish(CommandFailure.failureExitCode)
            }
            return nil
        }
        if let message { throw CommandFailure(message, exitCode: code) }
        if code != 0 { throw ExitCode(code) }
    }
}

/// A kubeconfig written for one kubectl run: private to the user, removed afterwards.
struct TemporaryKubeconfig {
    let path: String

    init(contents: String) throws {
        var template = Array((NSTemporaryDirectory() + "tunnel-kubeconfig-XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { throw CommandFailure.failed("cannot create a temporary kubeconfig: \(String(cString: strerror(errno)))") }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        Glibc.close(descriptor)
        guard written == bytes.count else { throw CommandFailure.failed("cannot write \(path)") }
    }

    func remove() {
        unlink(path)
    }
}
