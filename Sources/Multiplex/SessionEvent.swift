/// Something the owner must act on, drained with `Session.pollEvent()` after every input or command.
public enum SessionEvent: Hashable, Sendable {
    /// The peer opened a stream; accept it with `accept(_:metadata:)` or refuse it with `reset`.
    case streamOpened(StreamID, metadata: [UInt8], interactive: Bool)
    /// The peer accepted a stream we opened.
    case streamAccepted(StreamID, metadata: [UInt8])
    /// Bytes for the application. Call `consumed(_:on:)` once they are delivered, or the peer
    /// runs out of credit.
    case data(StreamID, ArraySlice<UInt8>)
    /// The peer finished its direction (half-close): no more data will arrive on this stream.
    case finished(StreamID)
    /// The stream ended abruptly: reset by the peer, refused, or killed by a protocol fault or the
    /// session's end. A reset the application asked for raises no event.
    case streamReset(StreamID, Failure)
    /// The stream's send buffer drained below half of its limit after `write` returned false.
    case writable(StreamID)
    /// A keepalive ping was answered.
    case pong(roundTrip: Duration)
    /// The peer goes away: it accepted our streams up to `lastStreamID`; no new streams here.
    case peerGoingAway(lastStreamID: StreamID, Failure)
    /// The session is over. Drain `pollTransmit` once more (a final GOAWAY may be waiting), then
    /// close the transport. The code is `noError` after a graceful drain.
    case closed(Failure)
}
