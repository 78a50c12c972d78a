import Multiplex

/// A moment as the node agent's decisions see it: the loop's monotonic milliseconds, which the
/// waits between dials are measured on, and the machine's wall clock in Unix seconds, which
/// certificates are dated by (and which may be wrong after a cold boot).
public struct EdgeInstant: Sendable, Equatable {
    public var milliseconds: UInt64
    public var unixSeconds: Int64

    public init(milliseconds: UInt64, unixSeconds: Int64) {
        self.milliseconds = milliseconds
        self.unixSeconds = unixSeconds
    }
}

/// When a node certificate is valid, in Unix seconds: all the core needs to know of it.
public struct CertificateDates: Sendable, Equatable {
    public var notBefore: Int64
    public var notAfter: Int64

    public init(notBefore: Int64, notAfter: Int64) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// Two thirds into the validity: when a certificate is renewed.
    public var renewalTime: Int64 { notBefore + (notAfter - notBefore) * 2 / 3 }
}

/// Why a session, a dial or a re-enrollment ended, as the shell read it from the connection.
public struct EdgeLoss: Sendable, Equatable {
    /// What the node makes of it: each kind is retried, but `replaced` also slows down and the
    /// shell tells the admin something different for each.
    public enum Kind: Sendable, Equatable {
        /// The network, the gateway or this node failed; retry as usual.
        case unreachable
        /// Another machine with this node's identity took the session over (GOAWAY `replaced`).
        case replaced
        /// The gateway revoked this node or refused its certificate.
        case revoked
    }

    public var kind: Kind
    public var failure: Failure
    /// The TLS error when the handshake refused a certificate by its dates (not yet valid or
    /// expired): maybe this machine's clock, which the core then checks once.
    public var certificateTimeError: String?

    public init(_ kind: Kind, _ failure: Failure, certificateTimeError: String? = nil) {
        self.kind = kind
        self.failure = failure
        self.certificateTimeError = certificateTimeError
    }

    /// A failure of the network, the gateway or this node.
    public init(_ failure: Failure) {
        self.init(.unreachable, failure)
    }
}

/// The node agent's decisions (`tunnel client`): which replica to dial and when, when to renew
/// the certificate, when to re-enroll an expired one, when to doubt this machine's clock and
/// what to check certificates against. Decisions, not actions: the `EdgeClient` feeds it what
/// happened with `now` and carries out the intents it returns (dial, arm a timer, ask, log).
/// No clock, no sockets, no TLS, so it runs on a virtual clock in tests. Loop-confined.
public struct EdgeCore {
    public struct Configuration: Sendable {
        /// How many replicas the `--gateway` list has, and the one to dial first (callers pass a
        /// random index, so a fleet spreads over the list).
        public var replicas: Int
        public var start: Int
        public var reconnect: ReconnectSchedule
        /// The slower backoff after a `replaced` session (`EdgeClientConfiguration.replacedBackoff`).
        public var replacedBackoff: Backoff
        /// A difference from the gateway's clock smaller than this many seconds is left alone.
        public var toleratedClockSkew: Int64 = 60

        public init(replicas: Int, start: Int, reconnect: ReconnectSchedule, replacedBackoff: Backoff) {
            self.replicas = max(1, replicas)
            self.start = start
            self.reconnect = reconnect
            self.replacedBackoff = replacedBackoff
        }
    }

    /// What happened, as the shell saw it.
    public enum Event: Sendable, Equatable {
        case start
        /// Resolving, connecting or setting up TLS failed before a session existed.
        case dialFailed(Failure)
        /// The session is up: TLS and the mux handshake are done.
        case sessionReady
        /// The gateway accepted the node's announcement: it took the node in.
        case announcementAccepted
        case sessionClosed(EdgeLoss)
        case retryTimerFired
        case renewalTimerFired
        /// A renewal's certificate was checked, saved and is now in use.
        case renewed(CertificateDates)
        case renewalFailed(reason: String)
        case reenrolled(CertificateDates)
        case reenrollmentFailed(EdgeLoss)
        /// The gateway's clock, in Unix seconds, or why it could not be learned.
        case gatewayTime(Int64)
        case gatewayTimeFailed(reason: String)
        case stop
    }

    /// What the shell must do. Carried out in order.
    public enum Intent: Sendable, Equatable {
        /// Dial `replica` and start a session, checking the gateway's certificate at
        /// `certificatesAt` (nil: this machine's clock).
        case dial(replica: Int, certificatesAt: Int64?)
        /// The certificate expired at `expiredAt`: re-enroll with it at `replica`.
        case reenroll(replica: Int, certificatesAt: Int64?, expiredAt: Int64)
        /// Ask `replica` its time on a connection that checks no dates.
        case askGatewayTime(replica: Int)
        /// Tell the admin why (by `loss.kind`), then fire the retry timer after this long.
        case retry(afterMilliseconds: UInt64, EdgeLoss)
        /// Fire the renewal timer after this long; `failedBecause` says the last renewal failed.
        case renew(afterMilliseconds: UInt64, failedBecause: String?)
        case cancelRenewal
        /// Ask for a new certificate for the same key over the live session.
        case requestRenewal
        /// This machine's clock is `offset` seconds behind the gateway's: certificates are now
        /// checked at the gateway's time. For the log.
        case clockCorrected(offset: Int64, local: Int64, gateway: Int64)
        /// Close the session and cancel everything: the client is stopping for good.
        case shutDown
    }

    /// Where the node stands. Results that arrive in another phase (a late answer after a stop,
    /// say) are dropped.
    enum Phase: Equatable {
        case idle
        case dialing
        case connected
        case waiting
        case reenrolling
        /// Asking the gateway's time after `loss`, which rejected a certificate by its dates.
        case checkingClock(after: EdgeLoss)
        case stopped
    }

    private(set) var phase = Phase.idle
    private var rotation: GatewayRotation
    private var replacedBackoff: Backoff
    private let toleratedClockSkew: Int64
    private var random: any RandomNumberGenerator
    /// The certificate in use.
    public private(set) var certificate: CertificateDates
    /// The gateway's clock minus ours, in seconds, once learned; 0 while ours is trusted.
    public private(set) var clockOffset: Int64 = 0
    /// Set after a time check, so a second certificate-time failure is not blamed on the clock.
    private var clockChecked = false
    private var renewing = false
    /// When the last session came up, for the `replaced` backoff's reset.
    private var readyAt: UInt64?

    /// - Parameter random: the jitter's source; tests pass a seeded one.
    public init(
        configuration: Configuration, certificate: CertificateDates,
        random: any RandomNumberGenerator = SystemRandomSource()
    ) {
        rotation = GatewayRotation(
            count: configuration.replicas, start: configuration.start, schedule: configuration.reconnect)
        replacedBackoff = configuration.replacedBackoff
        toleratedClockSkew = configuration.toleratedClockSkew
        self.certificate = certificate
        self.random = random
    }

    /// After `stop`: every later event is dropped.
    public var isStopped: Bool { phase == .stopped }

    /// The replica of the `--gateway` list dialed now or next.
    public var currentReplica: Int { rotation.current }

    /// Now by the gateway's clock, as far as the node knows it.
    func gatewayNow(_ now: EdgeInstant) -> Int64 { now.unixSeconds + clockOffset }

    /// The time certificates are checked at: the gateway's once this clock was found wrong.
    func certificatesAt(_ now: EdgeInstant) -> Int64? { clockOffset == 0 ? nil : gatewayNow(now) }

    public mutating func handle(_ event: Event, now: EdgeInstant) -> [Intent] {
        guard phase != .stopped else { return [] }
        switch event {
        case .start: return dialOrReenroll(now: now)
        case .dialFailed(let failure): return retry(after: EdgeLoss(failure), now: now)
        case .sessionReady: return sessionReady(now: now)
        case .announcementAccepted:
            rotation.accepted(now: now.milliseconds)
            return []
        case .sessionClosed(let loss): return sessionClosed(loss, now: now)
        case .retryTimerFired: return phase == .waiting ? dialOrReenroll(now: now) : []
        case .renewalTimerFired: return renewalDue()
        case .renewed(let validity): return renewed(validity, now: now)
        case .renewalFailed(let reason): return renewalFailed(reason, now: now)
        case .reenrolled(let validity): return reenrolled(validity, now: now)
        case .reenrollmentFailed(let loss):
            guard phase == .reenrolling else { return [] }
            return checkClock(after: loss) ?? retry(after: loss, now: now)
        case .gatewayTime(let time): return learned(gatewayTime: time, now: now)
        case .gatewayTimeFailed(let reason):
            guard case .checkingClock = phase else { return [] }
            return retry(
                after: EdgeLoss(Failure(.internalError, "cannot learn the gateway's time: \(reason)")), now: now)
        case .stop:
            phase = .stopped
            return [.shutDown]
        }
    }

    // MARK: - Session keeping

    /// Dials the current replica, or re-enrolls first when the certificate has expired (after a
    /// long power-off).
    private mutating func dialOrReenroll(now: EdgeInstant) -> [Intent] {
        if certificate.notAfter <= gatewayNow(now) {
            phase = .reenrolling
            return [
                .reenroll(
                    replica: rotation.current, certificatesAt: certificatesAt(now), expiredAt: certificate.notAfter)
            ]
        }
        phase = .dialing
        return [.dial(replica: rotation.current, certificatesAt: certificatesAt(now))]
    }

    private mutating func sessionReady(now: EdgeInstant) -> [Intent] {
        guard phase == .dialing else { return [] }
        phase = .connected
        readyAt = now.milliseconds
        clockChecked = false
        return [renewal(now: now)]
    }

    private mutating func sessionClosed(_ loss: EdgeLoss, now: EdgeInstant) -> [Intent] {
        switch phase {
        case .dialing, .connected: break
        case .idle, .waiting, .reenrolling, .checkingClock, .stopped: return []
        }
        return [.cancelRenewal] + (checkClock(after: loss) ?? retry(after: loss, now: now))
    }

    /// The next replica after a jittered wait, or a backoff once all failed in a row; a
    /// `replaced` session waits at least the slower backoff, which starts over only after a
    /// session outlived its longest wait.
    private mutating func retry(after loss: EdgeLoss, now: EdgeInstant) -> [Intent] {
        let lasted = readyAt.map { now.milliseconds &- $0 } ?? 0
        if lasted >= replacedBackoff.cap.wholeMilliseconds { replacedBackoff.reset() }
        readyAt = nil
        var milliseconds = rotation.failed(now: now.milliseconds, using: &random)
        if loss.kind == .replaced {
            milliseconds = max(milliseconds, replacedBackoff.nextDelay(using: &random).wholeMilliseconds)
        }
        phase = .waiting
        return [.retry(afterMilliseconds: milliseconds, loss)]
    }

    // MARK: - Identity upkeep

    /// The renewal timer for the certificate in use: at two thirds of its life by the gateway's clock.
    private func renewal(now: EdgeInstant) -> Intent {
        .renew(afterMilliseconds: UInt64(max(0, certificate.renewalTime - gatewayNow(now))) * 1000, failedBecause: nil)
    }

    /// Dials with the fresh certificate; one already expired again (by the gateway's clock)
    /// waits like any failure rather than re-enrolling at once in a loop.
    private mutating func reenrolled(_ validity: CertificateDates, now: EdgeInstant) -> [Intent] {
        guard phase == .reenrolling else { return [] }
        certificate = validity
        guard validity.notAfter > gatewayNow(now) else {
            return retry(
                after: EdgeLoss(Failure(.internalError, "the gateway issued an expired certificate")), now: now)
        }
        return dialOrReenroll(now: now)
    }

    private mutating func renewalDue() -> [Intent] {
        guard case .connected = phase, !renewing else { return [] }
        renewing = true
        return [.requestRenewal]
    }

    private mutating func renewed(_ validity: CertificateDates, now: EdgeInstant) -> [Intent] {
        renewing = false
        certificate = validity
        guard case .connected = phase else { return [] }
        return [renewal(now: now)]
    }

    /// A failed renewal is tried again within a minute, sooner as expiry nears (a tenth of what
    /// is left, at least a second).
    private mutating func renewalFailed(_ reason: String, now: EdgeInstant) -> [Intent] {
        renewing = false
        guard case .connected = phase else { return [] }
        let seconds = min(60, max(1, (certificate.notAfter - gatewayNow(now)) / 10))
        return [.renew(afterMilliseconds: UInt64(seconds) * 1000, failedBecause: reason)]
    }

    // MARK: - Clock correction

    /// A certificate-time failure may be this machine's clock (no RTC after a cold boot): ask the
    /// gateway's time, once until a session comes up. Nil when the loss is not that.
    private mutating func checkClock(after loss: EdgeLoss) -> [Intent]? {
        guard !clockChecked, loss.certificateTimeError != nil else { return nil }
        clockChecked = true
        phase = .checkingClock(after: loss)
        return [.askGatewayTime(replica: rotation.current)]
    }

    /// Adopts the gateway's time when ours is off by more than the tolerated skew and dials
    /// again; otherwise the certificate really is out of date and the node retries as usual.
    private mutating func learned(gatewayTime: Int64, now: EdgeInstant) -> [Intent] {
        guard case .checkingClock(let loss) = phase else { return [] }
        let offset = gatewayTime - now.unixSeconds
        guard abs(offset) > toleratedClockSkew else {
            let reason = "certificate check failed and the clock is right: \(loss.certificateTimeError ?? "")"
            return retry(after: EdgeLoss(Failure(.internalError, reason)), now: now)
        }
        clockOffset = offset
        return [.clockCorrected(offset: offset, local: now.unixSeconds, gateway: gatewayTime)]
            + dialOrReenroll(now: now)
    }
}
