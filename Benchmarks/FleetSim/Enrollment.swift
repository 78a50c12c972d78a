import Foundation
import Multiplex
import TunnelEdgeCore
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Enrolls the nodes of one loop that the cache does not hold, `concurrency` at a time, each
/// with a key of its own made here, over the real enrollment door (ALPN `tunnel-enroll/1`, the
/// token's CA pin checked in the handshake). A refused or failed attempt is retried with
/// backoff up to `attempts` times; the gateway's refusals (admission, used-up token) are counted.
final class Enroller {
    private let context: LoopContext
    private let cache: IdentityCache
    private let token: JoinToken
    private let tls: TLSContext
    private var queue: [(index: Int, name: String, source: SocketAddress)]
    private var running = 0
    private let concurrency: Int
    private let done: () -> Void
    static let attempts = 8

    init(
        context: LoopContext, cache: IdentityCache, token: JoinToken,
        jobs: [(index: Int, name: String, source: SocketAddress)],
        concurrency: Int, done: @escaping () -> Void
    ) throws {
        self.context = context
        self.cache = cache
        self.token = token
        queue = jobs.reversed()
        self.concurrency = concurrency
        self.done = done
        tls = try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: nil, peerVerification: .pinnedCA(sha256: token.caPin),
                applicationProtocols: [TunnelProtocol.enrollALPN]))
    }

    func start() {
        if queue.isEmpty { return done() }
        while running < concurrency, let job = queue.popLast() {
            running += 1
            enroll(job, attempt: 1, backoff: Backoff(base: .milliseconds(200), cap: .seconds(5)))
        }
    }

    private func enroll(_ job: (index: Int, name: String, source: SocketAddress), attempt: Int, backoff: Backoff) {
        let started = monotonicNanos()
        let key: PrivateKey
        let csr: String
        do {
            key = try PrivateKey.generateP256()
            csr = String(decoding: try CertificateSigningRequest(key: key, commonName: job.name).pem(), as: UTF8.self)
        } catch {
            return finished(job, error: "cannot make a key: \(error)")
        }
        let request = EnrollmentRequest.redeem(
            RedeemRequest(
                tokenID: token.id, secret: token.secret, nodeName: job.name, hostName: nil, labels: [:], csr: csr))
        let call = EnrollmentCall(request: request) { [self] result in
            switch result {
            case .success(let reply):
                do {
                    guard let pem = reply.certificate else { throw FleetFailure(reply.error ?? "no certificate") }
                    let (_, authority) = try acceptIssued(chainPEM: pem, key: key, name: job.name, pin: token.caPin)
                    try cache.save(name: job.name, key: key, chainPEM: pem, gatewayCA: authority)
                    context.stats.update {
                        $0.enrolled += 1
                        _ = $0.enrollLatency.record((monotonicNanos() &- started) / 1000)
                    }
                    finished(job, error: nil)
                } catch {
                    retry(job, attempt: attempt, backoff: backoff, error: "enrollment of \(job.name) refused: \(error)")
                }
            case .failure(let failure):
                retry(job, attempt: attempt, backoff: backoff, error: "enrollment failed: \(failure.message)")
            }
        }
        context.dial(from: job.source, context: tls, delegate: call) { result in
            if case .failure(let failure) = result { call.fail(failure) }
        }
    }

    private func retry(
        _ job: (index: Int, name: String, source: SocketAddress), attempt: Int, backoff: Backoff, error: String
    ) {
        context.stats.update { $0.enrollFailures += 1 }
        context.stats.error(error)
        guard attempt < Self.attempts else {
            return finished(job, error: "gave up enrolling \(job.name) after \(attempt) attempts")
        }
        var backoff = backoff
        let timer = LoopTimer(loop: context.loop)
        timer.start(after: backoff.nextDelay().wholeMilliseconds) { [self] in
            timer.close()
            enroll(job, attempt: attempt + 1, backoff: backoff)
        }
    }

    private func finished(_ job: (index: Int, name: String, source: SocketAddress), error: String?) {
        if let error { context.stats.error(error) }
        running -= 1
        if let next = queue.popLast() {
            running += 1
            enroll(next, attempt: 1, backoff: Backoff(base: .milliseconds(200), cap: .seconds(5)))
        } else if running == 0 {
            done()
        }
    }
}

/// One question on one enrollment connection: ask once the gateway's HELLO arrived, take the
/// `CertificateReply`, close.
final class EnrollmentCall: MuxConnectionDelegate {
    private let request: EnrollmentRequest
    private var completion: ((Result<CertificateReply, FleetFailure>) -> Void)?
    private var refusal: Failure?
    /// A connection holds its delegate weakly: the call keeps itself alive until it finishes.
    private var keepAlive: EnrollmentCall?

    init(request: EnrollmentRequest, completion: @escaping (Result<CertificateReply, FleetFailure>) -> Void) {
        self.request = request
        self.completion = completion
        keepAlive = self
    }

    func fail(_ failure: FleetFailure) { finish(.failure(failure), connection: nil) }

    private func finish(_ result: Result<CertificateReply, FleetFailure>, connection: MuxConnection?) {
        guard let completion else { return }
        self.completion = nil
        connection?.abort(Failure(.noError, "enrollment done"))
        completion(result)
        keepAlive = nil
    }

    func connectionEstablished(_ connection: MuxConnection) -> Failure? { nil }

    func connectionReady(_ connection: MuxConnection) {
        connection.request(request, reply: CertificateReply.self) { [self] result in
            finish(result, connection: connection)
        }
    }

    func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        connection.reset(stream, code: .refusedStream)
    }

    func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        if failure.code != .noError { refusal = failure }
    }

    func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let reason = connection.tlsFailure.map { "\($0)" } ?? (refusal ?? failure).reason
        finish(.failure(FleetFailure("the gateway ended the enrollment connection: \(reason)")), connection: nil)
    }
}

extension Duration {
    var wholeMilliseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000_000
    }
}
