import TunnelAudit
import TunnelIO

extension ConsoleServer {
    /// Why `run` could not serve; the message is a sentence for the auditor.
    public enum RunFailure: Error {
        /// No event loop could be made.
        case cannotStart(String)
        /// The address could not be listened on, or the log not indexed.
        case cannotServe(String)
    }

    /// `tunnel audit serve`: serves the log in `directory` at `host:port` on a loop of its own
    /// until SIGINT or SIGTERM. `listening` gets the one-time URL once the port is open.
    public static func run(
        host: String, port: UInt16, directory: String, report: AuditReport, services: ConsoleServices,
        listening: (String) -> Void
    ) throws(RunFailure) {
        let loop: EventLoop
        do { loop = try EventLoop() } catch { throw .cannotStart("\(error)") }
        let server: ConsoleServer
        do {
            server = try ConsoleServer(
                loop: loop, address: try SocketAddress(ip: host, port: port), directory: directory, report: report,
                services: services)
        } catch {
            throw .cannotServe("\(error)")
        }
        var watchers: [SignalWatcher] = []
        for signal in [Signal.interrupt, .terminate] {
            if let watcher = try? SignalWatcher(
                loop: loop, signal: signal,
                { _ in
                    server.close()
                    for watcher in watchers { watcher.close() }
                })
            {
                watchers.append(watcher)
            }
        }
        listening(server.url)
        _ = loop.run()
        _ = loop.close()
    }
}
