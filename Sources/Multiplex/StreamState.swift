/// Where one stream stands (`docs/PROTOCOL.md` §5). A closed stream has no state: it is removed.
///
/// Each direction is finished separately (half-close); a stream is closed when both are, or
/// when either side resets it. Only the stream's acceptor decides whether it exists at all, so
/// the opener's peer sees it "opening" until ACCEPT.
public enum StreamState: Hashable, Sendable {
    /// We sent OPEN and wait for ACCEPT. We may already send data within credit; the peer may
    /// not send any until it accepts. `sendFinished`: our FIN is already out.
    case localOpening(sendFinished: Bool)
    /// The peer sent OPEN and our application has not accepted yet. The peer may already send
    /// data (held by the application within the window); we may not send until we accept.
    case remoteOpening(receiveFinished: Bool)
    /// Both directions carry data.
    case open
    /// We sent FIN; the peer may still send.
    case localFinished
    /// The peer sent FIN; we may still send.
    case remoteFinished
    /// Both directions finished, or the stream was reset.
    case closed

    /// Whether the application may still write (and finish) on this stream.
    var canSend: Bool {
        switch self {
        case .localOpening(let sendFinished): !sendFinished
        case .open, .remoteFinished: true
        case .remoteOpening, .localFinished, .closed: false
        }
    }

    /// Whether the peer may still send data on this stream, so window updates still matter.
    var canReceive: Bool {
        switch self {
        case .remoteOpening(let receiveFinished): !receiveFinished
        case .open, .localFinished: true
        case .localOpening, .remoteFinished, .closed: false
        }
    }
}

/// Something that happens to a stream: a frame from the peer or a step of our own side.
public enum StreamEvent: Hashable, Sendable, CaseIterable {
    case receiveAccept
    case receiveAcceptWithFin
    case receiveData
    case receiveDataWithFin
    case receiveReset
    case sendAccept
    case sendData
    case sendFin
    case sendReset
}

/// What the session must do about a stream event. The state machine decides; the session
/// carries it out (writes frames, raises events).
public enum StreamDecision: Hashable, Sendable {
    /// Legal: the stream moves to this state (`.closed` means remove it).
    case moveTo(StreamState)
    /// The peer broke the stream's rules but not the connection's: reset the stream with this code.
    case resetStream(ErrorCode)
    /// The peer broke the protocol: close the connection with this failure.
    case closeConnection(Failure)
    /// Our own application asked for something this state does not allow; refuse the command.
    case refuse
}

extension StreamState {
    /// The single transition table for every state × event; exhaustively tested.
    public func on(_ event: StreamEvent) -> StreamDecision {
        switch (self, event) {
        case (.closed, _):
            return .refuse

        // Resets end every live state.
        case (_, .receiveReset), (_, .sendReset):
            return .moveTo(.closed)

        // The peer accepts our open.
        case (.localOpening(let sendFinished), .receiveAccept):
            return .moveTo(sendFinished ? .localFinished : .open)
        case (.localOpening(let sendFinished), .receiveAcceptWithFin):
            return .moveTo(sendFinished ? .closed : .remoteFinished)
        case (_, .receiveAccept), (_, .receiveAcceptWithFin):
            return .closeConnection(
                Failure(.protocolError, "ACCEPT for a stream that is not waiting for one (\(self))"))

        // Data from the peer.
        case (.localOpening, .receiveData), (.localOpening, .receiveDataWithFin):
            return .closeConnection(Failure(.protocolError, "DATA before the stream was accepted"))
        case (.remoteOpening(let receiveFinished), .receiveData):
            return receiveFinished ? .resetStream(.streamClosed) : .moveTo(self)
        case (.remoteOpening(let receiveFinished), .receiveDataWithFin):
            return receiveFinished ? .resetStream(.streamClosed) : .moveTo(.remoteOpening(receiveFinished: true))
        case (.open, .receiveData), (.localFinished, .receiveData):
            return .moveTo(self)
        case (.open, .receiveDataWithFin):
            return .moveTo(.remoteFinished)
        case (.localFinished, .receiveDataWithFin):
            return .moveTo(.closed)
        case (.remoteFinished, .receiveData), (.remoteFinished, .receiveDataWithFin):
            return .resetStream(.streamClosed)

        // Our application accepts the peer's open.
        case (.remoteOpening(let receiveFinished), .sendAccept):
            return .moveTo(receiveFinished ? .remoteFinished : .open)
        case (_, .sendAccept):
            return .refuse

        // Our own data and FIN.
        case (_, .sendData):
            return canSend ? .moveTo(self) : .refuse
        case (.localOpening(sendFinished: false), .sendFin):
            return .moveTo(.localOpening(sendFinished: true))
        case (.open, .sendFin):
            return .moveTo(.localFinished)
        case (.remoteFinished, .sendFin):
            return .moveTo(.closed)
        case (_, .sendFin):
            return .refuse
        }
    }
}
