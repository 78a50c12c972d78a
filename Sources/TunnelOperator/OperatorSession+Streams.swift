import Glibc
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelWire

// What the operator commands do over their session: each opens streams to a node's service and
// joins them to this process's stdin and stdout, a terminal, or local listeners, and ends the
// run when they end.

extension OperatorSession {
    /// `tunnel proxy`: stdin and stdout spliced to `service` on `node`; the run ends with the
    /// stream. ssh sends SIGHUP to its ProxyCommand as it exits, also after a clean logout; the
    /// stream is ending anyway then (stdin reaches EOF, the server's FIN is on its way), so it
    /// gets `hangupGraceMilliseconds` to finish cleanly and be audited as closed, not cut.
    public func proxyStandardStreams(
        node: String, service: String, interactive: Bool, hangupGraceMilliseconds: UInt64
    ) {
        let input: StreamConnection
        let output: StreamConnection
        do throws(OperatorFailure) {
            (input, output) = try spliceEnds(loop: loop, input: standardInput)
        } catch {
            return fail(error)
        }
        client.splice(
            on: connection, node: node, service: service, interactive: interactive, input: input, output: output
        ) { [self] failure in
            if let failure { fail(failure) } else { finish(0) }
        }
        let grace = LoopTimer(loop: loop)
        let hangup = try? SignalWatcher(loop: loop, signal: .hangup) { [self] _ in
            grace.start(after: hangupGraceMilliseconds) { [self] in finish(128 + SIGHUP) }
        }
        onFinish {
            hangup?.close()
            grace.close()
        }
    }

    /// `tunnel logs`: the stream from the node's log service (asked with `parameters`) goes to
    /// stdout; nothing goes the other way. A reader that went away (`| head`) has had enough,
    /// which ends the run as a success.
    public func printLogs(node: String, parameters: [String: String], interactive: Bool) {
        let input: StreamConnection
        let output: StreamConnection
        do throws(OperatorFailure) {
            (input, output) = try spliceEnds(loop: loop, input: closedInput)
        } catch {
            return fail(error)
        }
        client.splice(
            on: connection, node: node, service: LogService.serviceName, parameters: parameters,
            interactive: interactive, input: input, output: output
        ) { [self] failure in
            // Ended another way first (Ctrl-C): the stream was cut on purpose.
            guard !isFinished else { return }
            if let failure, !standardOutputReaderIsGone() { fail(failure) } else { finish(0) }
        }
    }

    /// `tunnel forward`: listens on `host:port`; every connection becomes its own stream to
    /// `service` on `node`, until the run ends.
    public func forward(
        node: String, service: String, host: String, port: UInt16, interactive: Bool = false
    ) throws -> Forwarder {
        let forwarder = try Forwarder(
            loop: loop, client: client, connection: connection, node: node, service: service, host: host,
            port: port, interactive: interactive, logger: logger)
        onFinish(forwarder.close)
        return forwarder
    }

    /// `tunnel kube-proxy`: the SOCKS5 listener kubectl reaches every node's Kubernetes API
    /// through, on `host:port` until the run ends.
    public func kubeProxy(host: String, port: UInt16) throws -> KubeProxy {
        let proxy = try KubeProxy(
            loop: loop, client: client, connection: connection, host: host, port: port, logger: logger)
        onFinish(proxy.close)
        return proxy
    }

    /// `tunnel shell`: this process's terminal (or stdin and stdout) joined to a shell on `node`;
    /// the run ends with the shell's exit status. `interactive` is whether stdin is a terminal
    /// (window changes become resizes); `interactiveTraffic` the stream's scheduling class.
    public func openShell(
        node: String, parameters: ShellParameters, interactive: Bool, interactiveTraffic: Bool
    ) {
        do throws(OperatorFailure) {
            let terminal = try TerminalShell(
                loop: loop, connection: connection, node: node, parameters: parameters, interactive: interactive,
                trafficInteractive: interactiveTraffic
            ) { [self] outcome in
                switch outcome {
                case .success(let status): finish(status)
                case .failure(let failure): fail(failure)
                }
            }
            onFinish(terminal.close)
        } catch {
            fail(error)
        }
    }
}
