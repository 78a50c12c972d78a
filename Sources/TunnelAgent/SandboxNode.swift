import Logging
import TunnelClient
import TunnelIO
import TunnelRuntime

/// The node of `tunnel dev`, on the loop that also runs its gateway. A node without a
/// certificate enrolls first, the way a real one does (a token, a key made here, a pinned CA),
/// with one attempt: the gateway is in the same process, so a failure is not a network's. Its
/// failures are logged, not thrown, so the gateway stays up to be looked at. Loop-confined.
package final class SandboxNode {
    private let settings: ClientSettings
    private let loop: EventLoop
    private let logger: Logger
    private let onFirstSession: () -> Void
    private var edge: EdgeClient?
    private var stopped = false

    /// Starts the node at once when it is enrolled; otherwise takes a join token from `token`
    /// (its failure is thrown) and starts once enrolled. `onFirstSession` runs when the node's
    /// first session to the gateway is up.
    package init(
        settings: ClientSettings, loop: EventLoop, logger: Logger, token: () throws(CommandFailure) -> JoinToken,
        onFirstSession: @escaping () -> Void
    ) throws(CommandFailure) {
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.onFirstSession = onFirstSession
        if settings.isEnrolled {
            start()
        } else {
            try enroll(with: token())
        }
    }

    /// Stops the node, or keeps an enrollment still under way from starting it.
    package func stop() {
        stopped = true
        edge?.stop()
    }

    private func enroll(with token: JoinToken) throws(CommandFailure) {
        try makePrivateDirectory(directoryPart(of: settings.cert))
        NodeCredentials.enroll(
            loop: loop, host: settings.gateway.host, port: settings.gateway.port, serverName: settings.serverName,
            token: token, nodeName: settings.nodeName, labels: settings.nodeLabels, files: settings.credentialFiles,
            logger: logger
        ) { [self] result in
            guard !stopped else { return }
            switch result {
            case .success: start()
            case .failure(let failure):
                logger.error("dev node enrollment failed", metadata: ["error": "\(failure.message)"])
            }
        }
    }

    private func start() {
        do {
            let edge = try startEdgeClient(try settings.runtimeConfiguration(), loop: loop, logger: logger)
            var announced = false
            edge.onStateChange = { [onFirstSession] connected, _ in
                guard connected, !announced else { return }
                announced = true
                onFirstSession()
            }
            self.edge = edge
        } catch {
            logger.error("cannot start the dev node", metadata: ["error": "\(error)"])
        }
    }
}
