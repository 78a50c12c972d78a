import Logging
import Multiplex
import TunnelIO
import TunnelTLS

/// What a `MuxConnection` reports to its owner (the gateway's or the client's bookkeeping).
public protocol MuxConnectionDelegate: AnyObject {
    /// The TLS handshake is done and the peer's certificate verified. Return a failure to refuse
    /// this peer anyway (wrong role, wrong CA for the protocol): it is sent to the peer in GOAWAY.
    func connectionEstablished(_ connection: MuxConnection) -> Failure?
    /// The peer's first frame arrived, so it accepted our certificate too (a TLS 1.3 client
    /// finishes its handshake before the server has checked the client's certificate).
    func connectionReady(_ connection: MuxConnection)
    /// The peer opened a stream: accept it (with a handler) or reset it before returning.
    func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool)
    /// The peer announced it is going away; no new streams on this connection.
    func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure)
    /// The connection is over; every stream handler has already been told.
    func connectionClosed(_ connection: MuxConnection, failure: Failure)
}

extension MuxConnectionDelegate {
    public func connectionReady(_ connection: MuxConnection) {}
}

/// One multiplexed session over TLS over a socket: the runtime's composition of `Multiplex`,
/// `TunnelTLS` and `TunnelIO`. After every socket read or timer it feeds ciphertext through TLS
/// into the session, dispatches the session's events, then drains the session's frames back
/// through TLS to the socket and re-arms its timer for the session's next deadline.
///
/// Backpressure: frames are pulled from the session only while the kernel takes them at once
/// (`TransmitQueueLimit`, `MuxConnection+Transmit.swift`), so a slow network leaves data in the
/// streams' queues, where interactive frames still go first, and whose writers are then told to
/// wait.
/// Lifetime: the socket's and timers' callbacks hold the connection strongly, so it lives until
/// `close` closes them, whoever else lets go of it first. Loop-confined.
public final class MuxConnection {
    public let loop: EventLoop
    public let logger: Logger
    /// The peer's address, for logs and `tunnel nodes`.
    public let remoteAddress: String
    public weak var delegate: MuxConnectionDelegate?

    let socket: StreamConnection
    let tls: TLSConnection
    let session: Session
    private let timer: LoopTimer
    private let flushTimer: LoopTimer
    /// The session deadline `timer` is armed for (see `armTimer`).
    private var armedDeadline: Timestamp?
    private var handlers: [StreamID: any StreamHandler] = [:]
    /// Streams that may have closed at the last flush (a FIN went out or came in).
    private var closingStreams: Set<StreamID> = []
    var phase = Phase.handshaking
    /// Set while inside a read or timer callback: commands then flush once at its end.
    private var dispatching = false
    private var flushScheduled = false
    /// Every ciphertext byte handed to the socket; less its write queue, what the kernel took.
    var bytesHandedToSocket = 0
    /// The next flush runs because the write queue has drained (a rate sample may end there).
    var resumedByDrain = false
    /// The TCP_NOTSENT_LOWAT last set on the socket.
    var appliedNotSentLowWater = TransmitQueueLimit.initialNotSentLowWater
    private var reportedReady = false
    /// Servers: where the handshake's costly steps run, off the loop; nil runs them here. Set
    /// before `start`.
    public var handshakeWorker: HandshakeWorker? {
        didSet { tls.stopsAfterAdmission = handshakeWorker != nil }
    }
    /// The handshake is with `handshakeWorker`: nothing here touches `tls` until it comes back.
    var handshakeIsAway = false
    let buffers: MuxBuffers
    var queueLimit = TransmitQueueLimit()
    /// Bytes of plaintext pulled from the session per TLS write.
    static let transmitChunk = 64 * 1024
    /// How much later than the armed one a session deadline may be and still leave the timer.
    static let timerSlack: Duration = .seconds(1)
    /// A closing connection whose last bytes cannot be delivered in this time is dropped.
    static let closeTimeoutMilliseconds: UInt64 = 5_000

    enum Phase: Equatable {
        case handshaking
        case established
        /// The session ended; the last frames are being written before the socket closes.
        case closing
        case closed
    }

    /// After the handshake: the peer's verified identity, ALPN protocol and the CA that verified it.
    /// All nil while the handshake is away (`handshakeIsAway`), as before it finished.
    public var peerIdentity: TunnelIdentity? { handshakeIsAway ? nil : tls.peerIdentity }
    public var applicationProtocol: String? { handshakeIsAway ? nil : tls.applicationProtocol }
    public var verifiedBy: TrustedCA? { handshakeIsAway ? nil : tls.verifiedBy }
    /// The peer's verified certificate (leaf); for its key, serial and expiry.
    public var peerCertificate: Certificate? { handshakeIsAway ? nil : tls.peerCertificate }
    /// The handshake resumed a session from a ticket (`TLSConfiguration.Resumption`).
    public var isResumed: Bool { !handshakeIsAway && tls.isResumed }
    /// Why the handshake or TLS failed, when it did: lets a client tell a wrong clock or an
    /// expired certificate from a network problem.
    public private(set) var tlsFailure: TLSError?
    public var isEstablished: Bool { phase == .established }
    /// The session is over (or the connection closing): resets now come from its end.
    public var isEnding: Bool { phase != .established || session.isClosed }
    public var canOpenStream: Bool { phase == .established && session.canOpenStream }
    /// How long ago the peer's last frame arrived: its own keepalive pings count, so an idle peer
    /// that pings shows a fresh value even when we do not ping it ourselves.
    public var silence: Duration { Self.now().since(session.lastHeardAt) }

    public init(
        loop: EventLoop, socket: StreamConnection, tls: TLSConnection, role: Role,
        configuration: SessionConfiguration, handshakeTimeout: Duration, buffers: MuxBuffers, logger: Logger
    ) {
        self.loop = loop
        self.socket = socket
        self.tls = tls
        self.logger = logger
        remoteAddress = (try? socket.peerAddress().description) ?? "unknown"
        session = Session(role: role, configuration: configuration, now: Self.now())
        timer = LoopTimer(loop: loop)
        flushTimer = LoopTimer(loop: loop)
        self.buffers = buffers
        do {
            try socket.setNotSentLowWater(UInt32(appliedNotSentLowWater))
        } catch {
            logger.debug(
                "cannot set TCP_NOTSENT_LOWAT", metadata: ["peer.address": "\(remoteAddress)", "error": "\(error)"])
        }
        let milliseconds = handshakeTimeout.wholeMilliseconds
        timer.start(after: milliseconds) { [self] in
            guard phase == .handshaking else { return }
            close(
                Failure(.protocolError, "TLS handshake with \(remoteAddress) did not finish within \(handshakeTimeout)")
            )
        }
    }

    static func now() -> Timestamp {
        Timestamp(nanoseconds: EventLoop.monotonicNanoseconds)
    }

    /// Takes up a handshake that `TLSConnection.holdAtClientHello` suspended.
    public func resumeHandshake() {
        guard phase == .handshaking else { return }
        dispatch { process() }
    }

    /// Starts reading and the TLS handshake; `received` are bytes the owner already read from
    /// the socket (a gateway peeks at the ClientHello before it admits a handshake).
    public func start(received: [UInt8] = []) {
        if !received.isEmpty { tls.feedCiphertext(received) }
        do {
            try socket.startReading { [self] event in
                dispatch {
                    switch event {
                    case .data(let bytes) where phase == .handshaking && handshakeWorker != nil:
                        // Copied: the handshake may go to the worker, which must not read the
                        // socket's buffer.
                        tls.feedCiphertext(bytes)
                        process()
                    case .data(let bytes):
                        tls.withReceivedCiphertext(bytes) { process() }
                    case .end:
                        tls.feedEndOfCiphertext()
                        process()
                        close(Failure(.noError, "\(remoteAddress) closed the connection"))
                    case .error(let error):
                        close(Failure(.internalError, "network error with \(remoteAddress): \(error)"))
                    }
                }
            }
        } catch {
            close(Failure(.internalError, "cannot read from \(remoteAddress): \(error)"))
            return
        }
        dispatch { process() }
    }

    // MARK: - Stream commands

    /// Opens a stream whose events go to `handler`.
    public func openStream(metadata: [UInt8], interactive: Bool, handler: any StreamHandler) throws(MultiplexError)
        -> StreamID
    {
        let id = try session.openStream(metadata: metadata, interactive: interactive)
        handlers[id] = handler
        scheduleFlush()
        return id
    }

    /// Gives a stream the peer opened a handler before it is accepted, so data the peer
    /// pipelined behind its OPEN is not lost while the acceptor makes up its mind.
    public func attach(_ handler: any StreamHandler, to id: StreamID) {
        handlers[id] = handler
    }

    /// Accepts a stream the peer opened; its events go to `handler` (or the attached one).
    public func accept(_ id: StreamID, metadata: [UInt8] = [], handler: (any StreamHandler)? = nil)
        throws(MultiplexError)
    {
        try session.accept(id, metadata: metadata)
        if let handler { handlers[id] = handler }
        closingStreams.insert(id)
        scheduleFlush()
    }

    /// Queues bytes; false asks the writer to wait for `streamWritable`. Throws if the stream is gone.
    @discardableResult
    public func write(_ bytes: ArraySlice<UInt8>, on id: StreamID) throws(MultiplexError) -> Bool {
        let keepGoing = try session.write(bytes, on: id)
        scheduleFlush()
        return keepGoing
    }

    public func finish(_ id: StreamID) {
        guard (try? session.finish(id)) != nil else { return }
        closingStreams.insert(id)
        scheduleFlush()
    }

    /// Resets a stream; its handler hears nothing more.
    public func reset(_ id: StreamID, code: ErrorCode) {
        handlers[id] = nil
        session.reset(id, code: code)
        scheduleFlush()
    }

    public func consumed(_ count: Int, on id: StreamID) {
        session.consumed(count, on: id)
        scheduleFlush()
    }

    /// Graceful shutdown: no new streams; the connection closes when the last stream is done.
    public func goAway(reason: String) {
        session.goAway(reason: reason)
        scheduleFlush()
    }

    /// Ends the connection now, telling the peer why.
    public func abort(_ failure: Failure) {
        dispatch { session.abort(failure.code, reason: failure.reason) }
    }

    // MARK: - The pump

    /// Runs `body`, then dispatches the session's events and flushes, until flushing raises no
    /// new events: a flush that drains a send buffer raises `.writable`, and a writer waiting
    /// for it must hear now, not at the next packet or timer.
    func dispatch(_ body: () -> Void) {
        let outermost = !dispatching
        dispatching = true
        body()
        guard outermost else { return }
        repeat {
            drainEvents()
            flush()
        } while session.hasPendingEvents && phase != .closed
        dispatching = false
    }

    func process() {
        if phase == .handshaking {
            guard !handshakeIsAway else { return }
            // The ClientHello is decided here, on the loop; every step after it on the worker.
            if handshakeWorker != nil, tls.clientHelloAdmitted { return handOffHandshake() }
            let state = tls.advanceHandshake()
            if handshakeWorker != nil, tls.clientHelloAdmitted, case .inProgress = state {
                return handOffHandshake()
            }
            guard handshakeAdvanced(to: state) else { return }
        }
        guard phase == .established else { return }
        while phase == .established {
            let result: TLSConnection.ReadResult
            let bytes: [UInt8]
            do throws(TLSError) {
                (result, bytes) = try decryptReceived()
            } catch {
                tlsFailure = error
                close(Failure(.protocolError, "TLS error with \(remoteAddress): \(error)"))
                return
            }
            switch result {
            case .bytes:
                session.receive(bytes[...], now: Self.now())
                if !reportedReady, session.hasPeerHello {
                    reportedReady = true
                    delegate?.connectionReady(self)
                }
                drainEvents()
            case .wouldBlock:
                return
            case .closed:
                session.abort(.noError, reason: "TLS closed")
                return
            }
        }
    }

    /// Acts on a handshake step: true once the connection is established and not refused.
    func handshakeAdvanced(to state: TLSConnection.HandshakeState) -> Bool {
        switch state {
        case .inProgress:
            return false
        case .failed(let error):
            tlsFailure = error
            // Write the alert first, so the peer learns why (expired, unknown CA…).
            beginClosing(Failure(.protocolError, "TLS handshake with \(remoteAddress) failed: \(error)"))
            return false
        case .done:
            phase = .established
            if let refusal = delegate?.connectionEstablished(self) {
                logger.notice(
                    "refusing peer", metadata: ["peer.address": "\(remoteAddress)", "reason": "\(refusal.reason)"])
                session.abort(refusal.code, reason: refusal.reason)
                return false
            }
            return true
        }
    }

    private func drainEvents() {
        while let event = session.pollEvent() {
            switch event {
            case .streamOpened(let id, let metadata, let interactive):
                if let delegate {
                    delegate.connection(self, peerOpened: id, metadata: metadata, interactive: interactive)
                } else {
                    session.reset(id, code: .refusedStream)
                }
            case .streamAccepted(let id, let metadata):
                handlers[id]?.streamAccepted(metadata: metadata)
            case .data(let id, let bytes):
                if let handler = handlers[id] {
                    handler.streamReceived(bytes)
                } else {
                    session.consumed(bytes.count, on: id)
                }
            case .finished(let id):
                closingStreams.insert(id)
                handlers[id]?.streamFinished()
            case .streamReset(let id, let failure):
                handlers.removeValue(forKey: id)?.streamReset(failure)
            case .writable(let id):
                handlers[id]?.streamWritable()
            case .pong:
                break
            case .peerGoingAway(_, let failure):
                delegate?.connectionPeerGoingAway(self, failure: failure)
            case .closed(let failure):
                beginClosing(failure)
            }
        }
    }

    private func scheduleFlush() {
        guard !dispatching else { return }
        flushNextTurn()
    }

    /// Flushes at the next loop turn, from inside a dispatch too: a flush whose turn's budget ran
    /// out while the kernel kept taking goes on after the loop has served others.
    func flushNextTurn() {
        guard !flushScheduled, phase != .closed else { return }
        flushScheduled = true
        flushTimer.start(after: 0) { [self] in
            flushScheduled = false
            dispatch {}
        }
    }

    /// Lets go of the handlers of closed streams, but not while events wait: the flush that
    /// sends a stream's last frame can raise its last `.writable` too, and the handler hears
    /// every event of its stream (a writer may wait on that one to release something else).
    /// `dispatch` drains the events and flushes again, and that flush sweeps.
    func sweepClosedStreams() {
        guard !closingStreams.isEmpty, !session.hasPendingEvents else { return }
        for id in closingStreams where session.state(of: id) == .closed {
            handlers[id] = nil
            closingStreams.remove(id)
        }
    }

    /// A deadline less than `timerSlack` later than the one armed leaves the timer as it is: it
    /// fires early once and is armed again then, since restarting a libuv timer (and its closure)
    /// at every flush was a visible share of an idle fleet's CPU. One further away moves the timer:
    /// an idle node's ping moves the deadline on by its whole interval, and a timer left behind
    /// then woke the loop once more per ping for nothing (as many wake-ups as the pings).
    func armTimer() {
        guard phase == .established, let deadline = session.nextDeadline else { return }
        if let armedDeadline, armedDeadline <= deadline, deadline.since(armedDeadline) < Self.timerSlack,
            timer.isActive
        {
            return
        }
        armedDeadline = deadline
        let now = Self.now()
        let milliseconds = deadline > now ? (deadline.nanoseconds - now.nanoseconds + 999_999) / 1_000_000 : 0
        timer.start(after: milliseconds) { [self] in
            armedDeadline = nil
            dispatch { session.advanceTime(to: Self.now()) }
        }
    }

    // MARK: - Closing

    /// The session ended: tell every stream, write the final frames, then close the socket.
    private func beginClosing(_ failure: Failure) {
        guard phase == .established || phase == .handshaking else { return }
        phase = .closing
        logger.debug("session closing", metadata: ["peer.address": "\(remoteAddress)", "reason": "\(failure)"])
        failAllStreams(failure)
        let delegate = self.delegate
        self.delegate = nil
        flushFinalBytes()
        do {
            try socket.shutdown { [self] _ in close(failure) }
            timer.start(after: Self.closeTimeoutMilliseconds) { [self] in close(failure) }
        } catch {
            close(failure)
        }
        // Last: the delegate may close this connection outright.
        delegate?.connectionClosed(self, failure: failure)
    }

    /// Closes the socket and every timer at once. Idempotent.
    public func close(_ failure: Failure) {
        guard phase != .closed else { return }
        let wasClosing = phase == .closing
        phase = .closed
        if !wasClosing {
            logger.debug("connection closed", metadata: ["peer.address": "\(remoteAddress)", "reason": "\(failure)"])
            failAllStreams(failure)
            delegate?.connectionClosed(self, failure: failure)
            delegate = nil
        }
        timer.close()
        flushTimer.close()
        socket.close()
    }

    private func failAllStreams(_ failure: Failure) {
        let remaining = handlers
        handlers.removeAll()
        for (_, handler) in remaining.sorted(by: { $0.key < $1.key }) {
            handler.streamReset(failure)
        }
    }
}

@available(*, unavailable, message: "MuxConnection is confined to its loop's thread")
extension MuxConnection: Sendable {}
