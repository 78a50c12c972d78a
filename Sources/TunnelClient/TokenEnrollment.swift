import Logging
import TunnelEdgeCore
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// `tunnel client --token`'s enrollment: `NodeCredentials.enroll` tried until it works or the
/// gateway refuses for good, waiting between attempts as `EnrollmentAttempts` decides (the
/// node's reconnect schedule). Loop-confined; keeps itself alive until it completes.
public final class TokenEnrollment {
    private let loop: EventLoop
    private let logger: Logger
    private let attempt: (@escaping (Result<TLSIdentity, FleetFailure>) -> Void) -> Void
    private var attempts = EnrollmentAttempts()
    private let retryTimer: LoopTimer
    private var completion: ((Result<TLSIdentity, FleetFailure>) -> Void)?
    private var keepAlive: TokenEnrollment?

    /// Starts at once; `completion` runs once, on the loop, with the identity or the final refusal.
    @discardableResult
    public init(
        loop: EventLoop, host: String, port: UInt16, serverName: String, token: JoinToken, nodeName: String?,
        labels: [String: String], files: NodeCredentialFiles, logger: Logger,
        completion: @escaping (Result<TLSIdentity, FleetFailure>) -> Void
    ) {
        self.loop = loop
        self.logger = logger
        self.completion = completion
        retryTimer = LoopTimer(loop: loop)
        attempt = { done in
            NodeCredentials.enroll(
                loop: loop, host: host, port: port, serverName: serverName, token: token, nodeName: nodeName,
                labels: labels, files: files, logger: logger, completion: done)
        }
        keepAlive = self
        tryOnce()
    }

    private func tryOnce() {
        attempt { [self] result in
            guard case .failure(let failure) = result,
                case .retry(let milliseconds) = attempts.failed(isFinal: failure.isFinal, now: loop.now)
            else { return finish(result) }
            logger.warning(
                "enrollment failed; retrying",
                metadata: ["reason": "\(failure.message)", "retry.in_ms": "\(milliseconds)"])
            retryTimer.start(after: milliseconds) { [self] in tryOnce() }
        }
    }

    private func finish(_ result: Result<TLSIdentity, FleetFailure>) {
        retryTimer.close()
        let completion = self.completion
        self.completion = nil
        completion?(result)
        keepAlive = nil
    }
}
