/// Frame handling: what each frame from the peer does to the session and its streams.
extension Session {
    // MARK: - Frame handling

    func handle(_ frame: Frame) throws(Failure) {
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
}
