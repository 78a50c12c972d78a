/// Sending: which frames go out next, and in what order.
extension Session {
    // MARK: - Outputs

    /// Appends frames to `buffer` until it holds at least `maxBytes` or nothing is ready. Control
    /// frames go first; then data, interactive streams ahead of bulk ones, round-robin within
    /// each class, one frame per stream per turn. A DATA frame is cut to the room left, but not
    /// below `minimumCut` payload bytes, so a small `maxBytes` (a slow link's short queue) gets
    /// small frames rather than one 16 KiB frame past it; control frames may pass it by one.
    /// Returns the number of bytes appended.
    @discardableResult
    public func pollTransmit(into buffer: inout [UInt8], maxBytes: Int = 64 * 1024) -> Int {
        var urgent = 0
        return pollTransmit(into: &buffer, maxBytes: maxBytes, urgentBytes: &urgent)
    }

    /// `pollTransmit(into:maxBytes:)` that also sets `urgentBytes` to how many of the appended
    /// bytes, from the first, come before the first bulk DATA frame (control frames and
    /// interactive data): the owner can seal them in a TLS record of their own, which the peer
    /// decrypts without waiting for the bulk bytes behind them to arrive.
    @discardableResult
    public func pollTransmit(into buffer: inout [UInt8], maxBytes: Int, urgentBytes: inout Int) -> Int {
        let start = buffer.count
        var urgentEnd: Int?
        defer { urgentBytes = (urgentEnd ?? buffer.count) - start }
        while buffer.count - start < maxBytes, let frame = control.first {
            if peer == nil && frame.needsPeerHello && closedWith == nil { break }
            _ = control.popFirst()
            // A closed session that never heard the peer's HELLO has no stream to speak of.
            if peer == nil && frame.needsPeerHello { continue }
            emit(frame, into: &buffer)
        }
        guard closedWith == nil, peer != nil, control.isEmpty else { return buffer.count - start }
        while buffer.count - start < maxBytes, let stream = nextReadyStream() {
            if !stream.interactive && urgentEnd == nil { urgentEnd = buffer.count }
            let room = maxBytes - (buffer.count - start) - Limits.frameHeaderLength
            emitData(of: stream, into: &buffer, room: max(room, Self.minimumCut))
        }
        return buffer.count - start
    }

    // MARK: - Sending

    func schedule(_ stream: StreamRecord) {
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
enum ControlFrame {
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
