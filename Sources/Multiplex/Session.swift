/// One multiplexed connection, sans-IO: the owner hands in received bytes and the time, gives
/// commands, and after each of those drains `pollTransmit` and `pollEvent` and re-arms a timer
/// for `nextDeadline`. Nothing here reads a clock, touches a socket or allocates per byte.
///
/// Not `Sendable`: a session belongs to the one event loop that drives it.
public final class Session {
    /// The only protocol version this implementation speaks.
    public static let protocolVersion: UInt8 = 1

    public let role: Role
    public let configuration: SessionConfiguration

    // The state below is internal, not private, only so that Session+Receive.swift and
    // Session+Transmit.swift can reach it; nothing else in the module touches it.

    /// What the peer told us in its HELLO; nil until it arrives.
    var peer: HelloFrame?
    var closedWith: Failure?
    /// Whether the session has ended (failed, aborted, or drained after GOAWAY): its streams'
    /// resets from now on are the session's end, not their own.
    public var isClosed: Bool { closedWith != nil }
    var now: Timestamp

    var streams: [StreamID: StreamRecord] = [:]
    /// The stream looked up last: bulk traffic hits the same stream frame after frame, and this
    /// spares the hashing. A removed stream is `.closed`, which is how a stale entry is noticed.
    private var recentStream: StreamRecord?
    /// Internal, not private, so tests can start near the end of the ID space.
    var nextLocalStreamID: StreamID
    var lastPeerStreamID: StreamID = 0
    var peerOpenedCount = 0
    private var localOpenedCount = 0
    /// Bytes of closed streams the application still holds; their connection credit comes back
    /// when it reports them consumed.
    private var lingeringUnconsumed: [StreamID: Int] = [:]

    /// Set once we sent GOAWAY: the last peer stream we accepted.
    var sentGoAway: StreamID?
    /// Set once the peer sent GOAWAY: the last of our streams it accepted.
    var receivedGoAway: StreamID?

    private var decoder = FrameDecoder()
    var control = FIFO<ControlFrame>()
    var interactiveReady = FIFO<StreamID>()
    var bulkReady = FIFO<StreamID>()
    /// Interactive bytes sent in a row while bulk streams waited.
    var interactiveRun = 0
    var events = FIFO<SessionEvent>()

    var connectionCredit = SendCredit(initial: 0)
    var connectionWindow: ReceiveWindow
    var connectionUpdateQueued = false
    var floodGuard: FloodGuard

    /// When the last frame of any kind arrived from the peer (its keepalive pings included).
    public private(set) var lastHeardAt: Timestamp
    private var nextPingAt: Timestamp
    private var hasPinged = false
    /// Opaque values of pings in flight (our send times), oldest first, bounded by the miss limit.
    var pingsInFlight: [UInt64] = []
    /// Smoothed round-trip time from ping answers; nil until the first answer.
    public internal(set) var roundTrip: Duration?

    public init(role: Role, configuration: SessionConfiguration = SessionConfiguration(), now: Timestamp) {
        let configuration = configuration.validated()
        self.role = role
        self.configuration = configuration
        self.now = now
        nextLocalStreamID = role.firstStreamID
        connectionWindow = ReceiveWindow(initial: configuration.connectionWindow, max: configuration.connectionWindow)
        floodGuard = FloodGuard(
            maxResets: configuration.maxResetsPerWindow, maxIdleFrames: configuration.maxIdleFramesPerWindow)
        lastHeardAt = now
        nextPingAt = now
        control.append(.hello)
        advanceTime(to: now)
    }

    // MARK: - State the owner may read

    /// Nil while the session runs; why it ended otherwise.
    public var closure: Failure? { closedWith }
    /// Streams not yet closed, in either direction.
    public var streamCount: Int { streams.count }
    public var isGoingAway: Bool { sentGoAway != nil || receivedGoAway != nil }
    /// Whether the peer's HELLO has arrived (its limits are known and it accepted the transport).
    public var hasPeerHello: Bool { peer != nil }
    /// Whether `openStream` would succeed now.
    public var canOpenStream: Bool {
        guard closedWith == nil, !isGoingAway, nextLocalStreamID <= Limits.maxStreamID else { return false }
        return peer.map { localOpenedCount < Int($0.maxConcurrentStreams) } ?? true
    }

    /// The state of a stream, `.closed` if it does not exist (any more).
    public func state(of id: StreamID) -> StreamState {
        streams[id]?.state ?? .closed
    }

    /// Credit the peer has granted for this stream (for tests and diagnostics).
    public func sendCredit(of id: StreamID) -> Int64? { streams[id]?.sendCredit.available }
    public var connectionSendCredit: Int64 { connectionCredit.available }
    /// The current receive window of a stream (grows with auto-tuning).
    public func receiveWindow(of id: StreamID) -> Int64? { streams[id]?.receiveWindow.window }
    /// Bytes the application has queued on a stream and the session has not sent yet.
    public func queuedBytes(of id: StreamID) -> Int? { streams[id]?.sendQueue.byteCount }

    /// When the owner must call `advanceTime(to:)` at the latest; nil once closed.
    public var nextDeadline: Timestamp? {
        guard closedWith == nil else { return nil }
        return min(pingDueAt, deadAt)
    }

    /// When the next ping goes out: every keepalive interval; or, for a side that pings only
    /// when quiet and has no stream open, once the peer has been silent for all but the last of
    /// its allowed intervals, so that ping still has an interval to be answered before `deadAt`.
    /// The first ping always goes out at once: it gives the round trip that window growth needs.
    private var pingDueAt: Timestamp {
        guard configuration.pingsOnlyWhenQuiet, hasPinged, streams.isEmpty else { return nextPingAt }
        let quietLimit = configuration.keepaliveInterval * (configuration.keepaliveMissLimit - 1)
        return max(nextPingAt, lastHeardAt + quietLimit)
    }

    private var deadAt: Timestamp {
        lastHeardAt + configuration.keepaliveInterval * configuration.keepaliveMissLimit
    }

    // MARK: - Inputs

    /// Bytes received from the transport, in order. Frames that arrive whole are handed on as
    /// slices of `bytes`, without copying.
    public func receive(_ bytes: ArraySlice<UInt8>, now: Timestamp) {
        guard closedWith == nil else { return }
        self.now = max(self.now, now)
        decoder.append(bytes)
        do {
            while closedWith == nil, let frame = try decoder.next() {
                lastHeardAt = self.now
                try handle(frame)
            }
        } catch {
            fail(error)
        }
    }

    public func receive(_ bytes: [UInt8], now: Timestamp) {
        receive(bytes[...], now: now)
    }

    /// Time moved on: sends keepalive pings and declares a silent peer dead.
    public func advanceTime(to now: Timestamp) {
        guard closedWith == nil else { return }
        self.now = max(self.now, now)
        if self.now >= deadAt {
            let silence = self.now.since(lastHeardAt)
            fail(
                Failure(
                    .keepaliveTimeout,
                    "nothing heard from the peer for \(silence) (\(configuration.keepaliveMissLimit) keepalive intervals)"
                ))
            return
        }
        if self.now >= pingDueAt {
            hasPinged = true
            let opaque = self.now.nanoseconds
            pingsInFlight.append(opaque)
            if pingsInFlight.count > configuration.keepaliveMissLimit { pingsInFlight.removeFirst() }
            control.append(.ping(opaque))
            nextPingAt = self.now + configuration.keepaliveInterval
        }
    }

    // MARK: - Commands

    /// Opens a stream carrying `metadata` (at most 4 KiB: the service name and such).
    /// Data may be written at once; it flows within the peer's initial credit before ACCEPT.
    public func openStream(metadata: [UInt8], interactive: Bool = false) throws(MultiplexError) -> StreamID {
        try checkOpen()
        guard metadata.count <= Limits.maxMetadataLength else { throw .metadataTooLong(metadata.count) }
        guard sentGoAway == nil, receivedGoAway == nil else { throw .goingAway }
        guard nextLocalStreamID <= Limits.maxStreamID else {
            goAway(reason: "stream IDs exhausted")
            throw .streamIDsExhausted
        }
        if let peer, localOpenedCount >= Int(peer.maxConcurrentStreams) {
            throw .streamLimitReached(Int(peer.maxConcurrentStreams))
        }
        let id = nextLocalStreamID
        nextLocalStreamID += 2
        streams[id] = StreamRecord(
            id: id, state: .localOpening(sendFinished: false), interactive: interactive,
            sendCredit: peer?.initialStreamWindow ?? 0, configuration: configuration)
        localOpenedCount += 1
        control.append(.open(id, metadata: metadata, interactive: interactive))
        return id
    }

    /// Accepts a stream the peer opened; `metadata` (at most 4 KiB) goes back in ACCEPT.
    public func accept(_ id: StreamID, metadata: [UInt8] = []) throws(MultiplexError) {
        try checkOpen()
        guard metadata.count <= Limits.maxMetadataLength else { throw .metadataTooLong(metadata.count) }
        let stream = try existingStream(id)
        guard case .moveTo(let next) = stream.state.on(.sendAccept) else { throw .streamNotAcceptable(id) }
        stream.state = next
        control.append(.accept(id, metadata: metadata))
        removeIfClosed(stream, completed: true)
    }

    /// Queues bytes on a stream. Returns false when the stream's send buffer is full: stop
    /// reading from the source until `.writable` arrives, so buffers stay bounded.
    @discardableResult
    public func write(_ bytes: ArraySlice<UInt8>, on id: StreamID) throws(MultiplexError) -> Bool {
        try checkOpen()
        let stream = try existingStream(id)
        guard stream.state.canSend, !stream.finishQueued else { throw .streamNotWritable(id) }
        stream.sendQueue.append(bytes)
        schedule(stream)
        if stream.sendQueue.byteCount >= configuration.sendBufferLimit {
            stream.wantsWritable = true
            return false
        }
        return true
    }

    @discardableResult
    public func write(_ bytes: [UInt8], on id: StreamID) throws(MultiplexError) -> Bool {
        try write(bytes[...], on: id)
    }

    /// Half-closes our direction once the queued bytes are sent.
    public func finish(_ id: StreamID) throws(MultiplexError) {
        try checkOpen()
        let stream = try existingStream(id)
        guard stream.state.canSend, !stream.finishQueued else { throw .streamNotWritable(id) }
        stream.finishQueued = true
        schedule(stream)
    }

    /// Abandons a stream in both directions; queued bytes are dropped and the peer is told `code`.
    public func reset(_ id: StreamID, code: ErrorCode = .cancel) {
        guard closedWith == nil, let stream = lookUp(id) else { return }
        if stream.openSent || !stream.isLocal(role) {
            control.append(.reset(id, code))
        }
        // Our own resets, and those we relay for someone else, are never charged to the peer.
        remove(stream, completed: false)
    }

    /// The application delivered `count` bytes of this stream's data; the credit goes back to the
    /// peer under the window-update rule (see `ReceiveWindow`). Counts for closed streams too.
    public func consumed(_ count: Int, on id: StreamID) {
        guard closedWith == nil, count > 0 else { return }
        if let stream = lookUp(id) {
            let before = stream.receiveWindow.unconsumed
            stream.receiveWindow.consume(count)
            returnConnectionCredit(Int(before - stream.receiveWindow.unconsumed))
            if stream.state.canReceive, stream.receiveWindow.wantsUpdate, !stream.windowUpdateQueued {
                stream.windowUpdateQueued = true
                control.append(.windowUpdate(id))
            }
        } else if let held = lingeringUnconsumed[id] {
            let taken = min(held, count)
            lingeringUnconsumed[id] = held == taken ? nil : held - taken
            returnConnectionCredit(taken)
        }
    }

    /// Starts a graceful shutdown: the peer learns the last stream we accepted, streams drain,
    /// new opens from either side are refused, and `.closed(noError)` follows the last stream.
    public func goAway(reason: String = "") {
        guard closedWith == nil, sentGoAway == nil else { return }
        sentGoAway = lastPeerStreamID
        control.append(.goAway(lastPeerStreamID, .noError, message: Self.truncatedMessage(reason)))
        closeIfDrained()
    }

    /// Ends the session at once with `code`, e.g. when the owner shuts down hard.
    public func abort(_ code: ErrorCode, reason: String) {
        fail(Failure(code, reason))
    }

    // MARK: - Outputs

    /// The next event for the owner, nil when there is none.
    public func pollEvent() -> SessionEvent? {
        events.popFirst()
    }

    /// Whether events wait to be polled. Sending can raise events too (`.writable` when a send
    /// buffer drains), so an owner checks this after `pollTransmit`, not only after input.
    public var hasPendingEvents: Bool { !events.isEmpty }

    // MARK: - Stream bookkeeping

    func lookUp(_ id: StreamID) -> StreamRecord? {
        if let recent = recentStream, recent.id == id, recent.state != .closed { return recent }
        let stream = streams[id]
        if stream != nil { recentStream = stream }
        return stream
    }

    func isLocalID(_ id: StreamID) -> Bool {
        (id & 1 == 1) == (role == .dialer)
    }

    /// The live stream for a frame's ID; nil for a stream that existed and is closed (a frame
    /// racing a reset, counted as idle); a protocol error for a stream that never existed.
    func liveStream(_ id: StreamID) throws(Failure) -> StreamRecord? {
        if let stream = lookUp(id) { return stream }
        let existed = isLocalID(id) ? id < nextLocalStreamID : id <= lastPeerStreamID
        guard existed else {
            throw Failure(.protocolError, "frame for stream \(id), which was never opened")
        }
        try floodGuard.recordIdleFrame(now: now)
        return nil
    }

    func apply(_ event: StreamEvent, to stream: StreamRecord) throws(Failure) {
        switch stream.state.on(event) {
        case .moveTo(let next): stream.state = next
        case .closeConnection(let failure): throw failure
        case .resetStream(let code): try resetByProtocol(stream, Failure(code, "\(event) in state \(stream.state)"))
        case .refuse: throw Failure(.internalError, "\(event) refused in state \(stream.state)")
        }
    }

    /// Resets a stream because the peer broke its rules; the application hears of it. The reset
    /// is ours, so the frame that broke the rule is charged as an idle frame, not as a reset.
    func resetByProtocol(_ stream: StreamRecord, _ failure: Failure) throws(Failure) {
        try queueForcedReply(.reset(stream.id, failure.code))
        remove(stream, completed: false)
        events.append(.streamReset(stream.id, failure))
        try floodGuard.recordIdleFrame(now: now)
    }

    private func existingStream(_ id: StreamID) throws(MultiplexError) -> StreamRecord {
        guard let stream = lookUp(id) else { throw .unknownStream(id) }
        return stream
    }

    private func checkOpen() throws(MultiplexError) {
        if let closedWith { throw .sessionClosed(closedWith) }
    }

    func removeIfClosed(_ stream: StreamRecord, completed: Bool) {
        if stream.state == .closed { remove(stream, completed: completed) }
    }

    func remove(_ stream: StreamRecord, completed: Bool) {
        guard streams.removeValue(forKey: stream.id) != nil else { return }
        stream.state = .closed
        // Let go of the record now: it holds the stream's window loan until it is freed.
        if recentStream === stream { recentStream = nil }
        if stream.isLocal(role) { localOpenedCount -= 1 } else { peerOpenedCount -= 1 }
        let held = Int(stream.receiveWindow.unconsumed)
        if held > 0 {
            if completed {
                lingeringUnconsumed[stream.id] = held
            } else {
                // A reset stream's data is dropped by the application; its budget returns now.
                returnConnectionCredit(held)
            }
        }
        if completed { floodGuard.recordCompletedStream(now: now) }
        closeIfDrained()
    }

    func returnConnectionCredit(_ count: Int) {
        guard count > 0 else { return }
        if connectionWindow.unconsumed < Int64(count) {
            connectionWindow.consume(Int(connectionWindow.unconsumed))
        } else {
            connectionWindow.consume(count)
        }
        if connectionWindow.wantsUpdate, !connectionUpdateQueued {
            connectionUpdateQueued = true
            control.append(.windowUpdate(0))
        }
    }

    func closeIfDrained() {
        guard closedWith == nil, isGoingAway, streams.isEmpty else { return }
        closedWith = Failure(.noError, "drained after go-away")
        events.append(.closed(closedWith!))
    }

    /// Ends the session: every stream is reset with `failure`, the peer gets a GOAWAY naming it
    /// (unless `answer` is false: the peer itself ended it abortively), and nothing else is sent.
    func fail(_ failure: Failure, answer: Bool = true) {
        guard closedWith == nil else { return }
        closedWith = failure
        control.removeAll()
        if answer {
            control.append(.goAway(lastPeerStreamID, failure.code, message: Self.truncatedMessage(failure.reason)))
        }
        for id in streams.keys.sorted() {
            events.append(.streamReset(id, failure))
        }
        streams.removeAll()
        recentStream = nil
        interactiveReady.removeAll()
        bulkReady.removeAll()
        events.append(.closed(failure))
    }

    /// Queues a reply the peer forced on us. A peer that keeps forcing replies while not reading
    /// them would grow this queue without bound, so past the limit the session ends.
    func queueForcedReply(_ frame: ControlFrame) throws(Failure) {
        control.append(frame)
        guard control.count <= configuration.maxPendingControlFrames else {
            throw Failure(.enhanceYourCalm, "\(control.count) replies waiting unsent: the peer floods without reading")
        }
    }

    private static func truncatedMessage(_ text: String) -> [UInt8] {
        Array(text.utf8.prefix(Limits.maxGoAwayMessage))
    }
}
