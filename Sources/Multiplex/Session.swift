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

    /// What the peer told us in its HELLO; nil until it arrives.
    private var peer: HelloFrame?
    private var closedWith: Failure?
    /// Whether the session has ended (failed, aborted, or drained after GOAWAY): its streams'
    /// resets from now on are the session's end, not their own.
    public var isClosed: Bool { closedWith != nil }
    private var now: Timestamp

    private var streams: [StreamID: StreamRecord] = [:]
    /// The stream looked up last: bulk traffic hits the same stream frame after frame, and this
    /// spares the hashing. A removed stream is `.closed`, which is how a stale entry is noticed.
    private var recentStream: StreamRecord?
    /// Internal, not private, so tests can start near the end of the ID space.
    var nextLocalStreamID: StreamID
    private var lastPeerStreamID: StreamID = 0
    private var peerOpenedCount = 0
    private var localOpenedCount = 0
    /// Bytes of closed streams the application still holds; their connection credit comes back
    /// when it reports them consumed.
    private var lingeringUnconsumed: [StreamID: Int] = [:]

    /// Set once we sent GOAWAY: the last peer stream we accepted.
    private var sentGoAway: StreamID?
    /// Set once the peer sent GOAWAY: the last of our streams it accepted.
    private var receivedGoAway: StreamID?

    private var decoder = FrameDecoder()
    private var control = FIFO<ControlFrame>()
    private var interactiveReady = FIFO<StreamID>()
    private var bulkReady = FIFO<StreamID>()
    /// Interactive bytes sent in a row while bulk streams waited.
    private var interactiveRun = 0
    private var events = FIFO<SessionEvent>()

    private var connectionCredit = SendCredit(initial: 0)
    private var connectionWindow: ReceiveWindow
    private var connectionUpdateQueued = false
    private var floodGuard: FloodGuard

    private var lastHeardAt: Timestamp
    private var nextPingAt: Timestamp
    /// Opaque values of pings in flight (our send times), oldest first, bounded by the miss limit.
    private var pingsInFlight: [UInt64] = []
    /// Smoothed round-trip time from ping answers; nil until the first answer.
    public private(set) var roundTrip: Duration?

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
        return min(nextPingAt, deadAt)
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
        if self.now >= nextPingAt {
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

    /// Appends frames to `buffer` until it holds at least `maxBytes` or nothing is ready. Control
    /// frames go first; then data, interactive streams ahead of bulk ones, round-robin within
    /// each class, one frame per stream per turn. A DATA frame is cut to the room left, but not
    /// below `minimumCut` payload bytes, so a small `maxBytes` (a slow link's short queue) gets
    /// small frames rather than one 16 KiB frame past it; control frames may pass it by one.
    /// Returns the number of bytes appended.
    @discardableResult
    public func pollTransmit(into buffer: inout [UInt8], maxBytes: Int = 64 * 1024) -> Int {
        let start = buffer.count
        while buffer.count - start < maxBytes, let frame = control.first {
            if peer == nil && frame.needsPeerHello && closedWith == nil { break }
            _ = control.popFirst()
            // A closed session that never heard the peer's HELLO has no stream to speak of.
            if peer == nil && frame.needsPeerHello { continue }
            emit(frame, into: &buffer)
        }
        guard closedWith == nil, peer != nil, control.isEmpty else { return buffer.count - start }
        while buffer.count - start < maxBytes, let stream = nextReadyStream() {
            let room = maxBytes - (buffer.count - start) - Limits.frameHeaderLength
            emitData(of: stream, into: &buffer, room: max(room, Self.minimumCut))
        }
        return buffer.count - start
    }

    /// The next event for the owner, nil when there is none.
    public func pollEvent() -> SessionEvent? {
        events.popFirst()
    }

    /// Whether events wait to be polled. Sending can raise events too (`.writable` when a send
    /// buffer drains), so an owner checks this after `pollTransmit`, not only after input.
    public var hasPendingEvents: Bool { !events.isEmpty }

    // MARK: - Frame handling

    private func handle(_ frame: Frame) throws(Failure) {
        guard let peer else {
            switch frame {
            case .hello(let hello):
                try receiveHello(hello)
            case .goAway(let last, let code, let message):
                // A side that refuses the connection outright says why without a HELLO.
                try receiveGoAway(last: last, code: code, message: message)
            default:
                throw Failure(.protocolError, "first frame was not HELLO")
            }
            return
        }
        switch frame {
        case .hello:
            throw Failure(.protocolError, "second HELLO")
        case .open(let id, let metadata, let interactive, let fin):
            try receiveOpen(id, metadata: metadata, interactive: interactive, fin: fin, peer: peer)
        case .accept(let id, let metadata, let fin):
            try receiveAccept(id, metadata: metadata, fin: fin)
        case .data(let id, let payload, let fin):
            try receiveData(id, payload, fin: fin)
        case .windowUpdate(let id, let increment):
            try floodGuard.recordIdleFrame(now: now)
            try receiveWindowUpdate(id, increment: increment)
        case .reset(let id, let code):
            try receiveReset(id, code: code)
        case .ping(let opaque, let ack):
            try floodGuard.recordIdleFrame(now: now)
            if ack {
                receivePong(opaque)
            } else {
                try queueForcedReply(.pong(opaque))
            }
        case .goAway(let last, let code, let message):
            try floodGuard.recordIdleFrame(now: now)
            try receiveGoAway(last: last, code: code, message: message)
        }
    }

    private func receiveHello(_ hello: HelloFrame) throws(Failure) {
        guard hello.minVersion <= hello.maxVersion else {
            throw Failure(
                .protocolError, "HELLO's minimum version \(hello.minVersion) is above its maximum \(hello.maxVersion)")
        }
        let version = min(Self.protocolVersion, hello.maxVersion)
        guard version >= max(Self.protocolVersion, hello.minVersion) else {
            throw Failure(
                .unsupportedVersion,
                "peer speaks protocol versions \(hello.minVersion)–\(hello.maxVersion); we speak \(Self.protocolVersion)"
            )
        }
        guard Int64(hello.initialStreamWindow) <= Limits.maxWindow, Int64(hello.connectionWindow) <= Limits.maxWindow
        else {
            throw Failure(.flowControlError, "HELLO advertises a window above 2^31-1")
        }
        peer = hello
        connectionCredit = SendCredit(initial: hello.connectionWindow)
        // Streams opened before the peer's limits were known get them now; any beyond its cap are refused.
        var allowed = Int(hello.maxConcurrentStreams)
        for id in streams.keys.sorted() {
            guard let stream = streams[id] else { continue }
            stream.sendCredit = SendCredit(initial: hello.initialStreamWindow)
            if allowed > 0 {
                allowed -= 1
            } else {
                remove(stream, completed: false)
                events.append(
                    .streamReset(
                        id,
                        Failure(.refusedStream, "the peer allows only \(hello.maxConcurrentStreams) concurrent streams")
                    ))
            }
        }
    }

    private func receiveOpen(
        _ id: StreamID, metadata: ArraySlice<UInt8>, interactive: Bool, fin: Bool, peer: HelloFrame
    ) throws(Failure) {
        guard !isLocalID(id) else {
            throw Failure(.protocolError, "peer opened stream \(id), which has our parity")
        }
        guard id > lastPeerStreamID else {
            throw Failure(.protocolError, "peer opened stream \(id) after \(lastPeerStreamID); IDs must increase")
        }
        lastPeerStreamID = id
        if let last = sentGoAway, id > last {
            try refuse(id, "we are going away")
            return
        }
        if receivedGoAway != nil {
            try refuse(id, "the peer itself announced it is going away")
            return
        }
        guard peerOpenedCount < Int(configuration.maxConcurrentStreams) else {
            try refuse(id, "over the \(configuration.maxConcurrentStreams) concurrent streams we allow")
            return
        }
        streams[id] = StreamRecord(
            id: id, state: .remoteOpening(receiveFinished: fin), interactive: interactive,
            sendCredit: peer.initialStreamWindow, configuration: configuration)
        peerOpenedCount += 1
        events.append(.streamOpened(id, metadata: Array(metadata), interactive: interactive))
        if fin { events.append(.finished(id)) }
    }

    /// Refuses a peer's OPEN with `refused-stream` (safe for the peer to retry elsewhere). No work
    /// was started for it, so it costs what a ping costs and is charged as an idle frame.
    private func refuse(_ id: StreamID, _ reason: String) throws(Failure) {
        try queueForcedReply(.reset(id, .refusedStream))
        try floodGuard.recordIdleFrame(now: now)
    }

    private func receiveAccept(_ id: StreamID, metadata: ArraySlice<UInt8>, fin: Bool) throws(Failure) {
        guard isLocalID(id) else {
            throw Failure(.protocolError, "peer accepted stream \(id), which it opened itself")
        }
        guard let stream = try liveStream(id) else { return }
        try apply(fin ? .receiveAcceptWithFin : .receiveAccept, to: stream)
        events.append(.streamAccepted(id, metadata: Array(metadata)))
        if fin { events.append(.finished(id)) }
        removeIfClosed(stream, completed: true)
    }

    private func receiveData(_ id: StreamID, _ payload: ArraySlice<UInt8>, fin: Bool) throws(Failure) {
        try connectionWindow.receive(payload.count)
        if payload.isEmpty && !fin { try floodGuard.recordIdleFrame(now: now) }
        guard let stream = try liveStream(id) else {
            // Data racing our reset: discard it and hand its connection credit straight back.
            returnConnectionCredit(payload.count)
            return
        }
        switch stream.state.on(fin ? .receiveDataWithFin : .receiveData) {
        case .moveTo(let next):
            try stream.receiveWindow.receive(payload.count)
            stream.state = next
            if !payload.isEmpty { events.append(.data(id, payload)) }
            if fin { events.append(.finished(id)) }
            removeIfClosed(stream, completed: true)
        case .resetStream(let code):
            returnConnectionCredit(payload.count)
            try resetByProtocol(stream, Failure(code, "DATA after the peer finished stream \(id)"))
        case .closeConnection(let failure):
            throw failure
        case .refuse:
            throw Failure(.internalError, "stream \(id) is live but refused data")
        }
    }

    private func receiveWindowUpdate(_ id: StreamID, increment: UInt32) throws(Failure) {
        if id == 0 {
            let wasBlocked = connectionCredit.available == 0
            try connectionCredit.grant(increment)
            // Streams blocked only by the connection budget left the ready queues; bring them back.
            if wasBlocked {
                for id in streams.keys.sorted() { schedule(streams[id]!) }
            }
            return
        }
        guard let stream = try liveStream(id) else { return }
        try stream.sendCredit.grant(increment)
        schedule(stream)
    }

    /// Only a reset of a stream the peer opened itself is charged to it: that is the rapid-reset
    /// pattern (CVE-2023-44487), open, make us start work, cancel. A reset of a stream we opened
    /// is the peer's answer to our request.
    private func receiveReset(_ id: StreamID, code: ErrorCode) throws(Failure) {
        guard let stream = try liveStream(id) else { return }
        remove(stream, completed: false)
        events.append(.streamReset(id, Failure(code, "reset by the peer")))
        if !isLocalID(id) { try floodGuard.recordReset(now: now) }
    }

    private func receivePong(_ opaque: UInt64) {
        guard let index = pingsInFlight.firstIndex(of: opaque) else { return }
        pingsInFlight.removeSubrange(...index)
        let sample = now.since(Timestamp(nanoseconds: opaque))
        roundTrip = roundTrip.map { $0 * 7 / 8 + sample / 8 } ?? sample
        events.append(.pong(roundTrip: sample))
    }

    private func receiveGoAway(last: StreamID, code: ErrorCode, message: ArraySlice<UInt8>) throws(Failure) {
        if let previous = receivedGoAway, last > previous {
            throw Failure(.protocolError, "second GOAWAY raised the last stream from \(previous) to \(last)")
        }
        receivedGoAway = last
        let text = String(decoding: message, as: UTF8.self)
        let failure = Failure(code, text.isEmpty ? "peer is going away" : "peer is going away: \(text)")
        events.append(.peerGoingAway(lastStreamID: last, failure))
        guard code == .noError else {
            // The sender closes right after an abortive GOAWAY: nobody would read an answer.
            fail(failure, answer: false)
            return
        }
        for id in streams.keys.sorted() where isLocalID(id) && id > last {
            if let stream = streams[id] {
                remove(stream, completed: false)
                events.append(
                    .streamReset(
                        id,
                        Failure(
                            .refusedStream, "not processed by the peer, which is going away; retry on a new session")))
            }
        }
        closeIfDrained()
    }

    // MARK: - Stream bookkeeping

    private func lookUp(_ id: StreamID) -> StreamRecord? {
        if let recent = recentStream, recent.id == id, recent.state != .closed { return recent }
        let stream = streams[id]
        if stream != nil { recentStream = stream }
        return stream
    }

    private func isLocalID(_ id: StreamID) -> Bool {
        (id & 1 == 1) == (role == .dialer)
    }

    /// The live stream for a frame's ID; nil for a stream that existed and is closed (a frame
    /// racing a reset, counted as idle); a protocol error for a stream that never existed.
    private func liveStream(_ id: StreamID) throws(Failure) -> StreamRecord? {
        if let stream = lookUp(id) { return stream }
        let existed = isLocalID(id) ? id < nextLocalStreamID : id <= lastPeerStreamID
        guard existed else {
            throw Failure(.protocolError, "frame for stream \(id), which was never opened")
        }
        try floodGuard.recordIdleFrame(now: now)
        return nil
    }

    private func apply(_ event: StreamEvent, to stream: StreamRecord) throws(Failure) {
        switch stream.state.on(event) {
        case .moveTo(let next): stream.state = next
        case .closeConnection(let failure): throw failure
        case .resetStream(let code): try resetByProtocol(stream, Failure(code, "\(event) in state \(stream.state)"))
        case .refuse: throw Failure(.internalError, "\(event) refused in state \(stream.state)")
        }
    }

    /// Resets a stream because the peer broke its rules; the application hears of it. The reset
    /// is ours, so the frame that broke the rule is charged as an idle frame, not as a reset.
    private func resetByProtocol(_ stream: StreamRecord, _ failure: Failure) throws(Failure) {
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

    private func removeIfClosed(_ stream: StreamRecord, completed: Bool) {
        if stream.state == .closed { remove(stream, completed: completed) }
    }

    private func remove(_ stream: StreamRecord, completed: Bool) {
        guard streams.removeValue(forKey: stream.id) != nil else { return }
        stream.state = .closed
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

    private func returnConnectionCredit(_ count: Int) {
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

    private func closeIfDrained() {
        guard closedWith == nil, isGoingAway, streams.isEmpty else { return }
        closedWith = Failure(.noError, "drained after go-away")
        events.append(.closed(closedWith!))
    }

    /// Ends the session: every stream is reset with `failure`, the peer gets a GOAWAY naming it
    /// (unless `answer` is false: the peer itself ended it abortively), and nothing else is sent.
    private func fail(_ failure: Failure, answer: Bool = true) {
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
    private func queueForcedReply(_ frame: ControlFrame) throws(Failure) {
        control.append(frame)
        guard control.count <= configuration.maxPendingControlFrames else {
            throw Failure(.enhanceYourCalm, "\(control.count) replies waiting unsent: the peer floods without reading")
        }
    }

    private static func truncatedMessage(_ text: String) -> [UInt8] {
        Array(text.utf8.prefix(Limits.maxGoAwayMessage))
    }

    // MARK: - Sending

    private func schedule(_ stream: StreamRecord) {
        guard !stream.scheduled, stream.hasSendWork else { return }
        stream.scheduled = true
        if stream.interactive { interactiveReady.append(stream.id) } else { bulkReady.append(stream.id) }
    }

    /// Picks the next stream with something to send: interactive first, but after
    /// `interactiveBurst` bytes in a row one bulk stream gets a turn, so bulk never starves.
    /// A stream without credit leaves the queue; a window update brings it back.
    private func nextReadyStream() -> StreamRecord? {
        while true {
            let useBulk =
                interactiveReady.isEmpty
                || (!bulkReady.isEmpty && interactiveRun >= configuration.interactiveBurst)
            guard let id = useBulk ? bulkReady.popFirst() : interactiveReady.popFirst() else { return nil }
            interactiveRun = useBulk ? 0 : interactiveRun
            guard let stream = lookUp(id) else { continue }
            stream.scheduled = false
            if stream.canEmitData(connectionCredit: connectionCredit.available) { return stream }
        }
    }

    /// Smallest payload `pollTransmit` cuts a DATA frame to: below it the 8-byte header and the
    /// TLS record's overhead would cost more than the queue they save.
    static let minimumCut = 1024

    private func emitData(of stream: StreamRecord, into buffer: inout [UInt8], room: Int) {
        let queued = stream.sendQueue.byteCount
        let credit = min(stream.sendCredit.available, connectionCredit.available)
        let length = min(Limits.maxDataPayload, room, queued, Int(clamping: credit))
        let fin = stream.finishQueued && length == queued
        FrameEncoder.appendHeader(.data, flags: fin ? .fin : [], length: length, streamID: stream.id, to: &buffer)
        stream.sendQueue.move(length, to: &buffer)
        stream.sendCredit.spend(length)
        connectionCredit.spend(length)
        floodGuard.recordDataFrameSent(now: now)
        if stream.interactive { interactiveRun += length }
        if stream.wantsWritable, stream.sendQueue.byteCount <= configuration.sendBufferLimit / 2 {
            stream.wantsWritable = false
            events.append(.writable(stream.id))
        }
        if fin {
            stream.finishQueued = false
            if case .moveTo(let next) = stream.state.on(.sendFin) { stream.state = next }
            removeIfClosed(stream, completed: true)
        } else {
            schedule(stream)
        }
    }

    private func emit(_ frame: ControlFrame, into buffer: inout [UInt8]) {
        switch frame {
        case .hello:
            FrameEncoder.append(
                .hello(
                    HelloFrame(
                        minVersion: Self.protocolVersion, maxVersion: Self.protocolVersion,
                        maxConcurrentStreams: configuration.maxConcurrentStreams,
                        initialStreamWindow: configuration.initialStreamWindow,
                        connectionWindow: configuration.connectionWindow)), to: &buffer)
        case .open(let id, let metadata, let interactive):
            guard let stream = streams[id] else { return }
            stream.openSent = true
            FrameEncoder.append(.open(id, metadata: metadata[...], interactive: interactive, fin: false), to: &buffer)
        case .accept(let id, let metadata):
            FrameEncoder.append(.accept(id, metadata: metadata[...], fin: false), to: &buffer)
        case .windowUpdate(0):
            connectionUpdateQueued = false
            if let increment = connectionWindow.takeUpdate(now: now, roundTrip: roundTrip) {
                FrameEncoder.append(.windowUpdate(0, increment: increment), to: &buffer)
            }
        case .windowUpdate(let id):
            guard let stream = streams[id] else { return }
            stream.windowUpdateQueued = false
            guard stream.state.canReceive,
                let increment = stream.receiveWindow.takeUpdate(now: now, roundTrip: roundTrip)
            else { return }
            FrameEncoder.append(.windowUpdate(id, increment: increment), to: &buffer)
        case .reset(let id, let code):
            FrameEncoder.append(.reset(id, code), to: &buffer)
        case .ping(let opaque):
            FrameEncoder.append(.ping(opaque: opaque, ack: false), to: &buffer)
        case .pong(let opaque):
            FrameEncoder.append(.ping(opaque: opaque, ack: true), to: &buffer)
        case .goAway(let last, let code, let message):
            FrameEncoder.append(.goAway(lastStreamID: last, code, message: message[...]), to: &buffer)
        }
    }
}

/// A frame waiting in the control queue. Window updates are computed when sent, so consumption
/// that happens meanwhile rides along in the same frame.
private enum ControlFrame {
    case hello
    case open(StreamID, metadata: [UInt8], interactive: Bool)
    case accept(StreamID, metadata: [UInt8])
    case windowUpdate(StreamID)
    case reset(StreamID, ErrorCode)
    case ping(UInt64)
    case pong(UInt64)
    case goAway(StreamID, ErrorCode, message: [UInt8])

    /// Stream frames wait for the peer's HELLO: until then its windows and limits are unknown.
    var needsPeerHello: Bool {
        switch self {
        case .hello, .ping, .pong, .goAway: false
        case .open, .accept, .windowUpdate, .reset: true
        }
    }
}

/// Everything the session keeps for one stream. A class so the session can hold it in the
/// table and in local variables without copying the queue around.
final class StreamRecord {
    let id: StreamID
    var state: StreamState
    let interactive: Bool
    var sendCredit: SendCredit
    var receiveWindow: ReceiveWindow
    var sendQueue = ChunkQueue()
    var finishQueued = false
    var openSent = false
    var scheduled = false
    var wantsWritable = false
    var windowUpdateQueued = false

    init(id: StreamID, state: StreamState, interactive: Bool, sendCredit: UInt32, configuration: SessionConfiguration) {
        self.id = id
        self.state = state
        self.interactive = interactive
        self.sendCredit = SendCredit(initial: sendCredit)
        receiveWindow = ReceiveWindow(initial: configuration.initialStreamWindow, max: configuration.maxStreamWindow)
    }

    func isLocal(_ role: Role) -> Bool {
        (id & 1 == 1) == (role == .dialer)
    }

    /// Bytes or a FIN are waiting to go out.
    var hasSendWork: Bool { sendQueue.byteCount > 0 || finishQueued }

    /// Whether a DATA frame can go out now: bytes and credit, or only a FIN.
    func canEmitData(connectionCredit: Int64) -> Bool {
        if sendQueue.byteCount == 0 { return finishQueued }
        return sendCredit.available > 0 && connectionCredit > 0
    }
}
