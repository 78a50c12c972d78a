import Multiplex

/// Receives what happens on one stream of a `MuxConnection`. Every call arrives on the loop
/// thread, from inside the connection's event dispatch.
public protocol StreamHandler: AnyObject {
    /// The peer accepted a stream we opened.
    func streamAccepted(metadata: [UInt8])
    /// Bytes arrived. Report them with `MuxConnection.consumed` once delivered onwards: until
    /// then they count against the stream's window, which is what makes backpressure end to end.
    func streamReceived(_ bytes: ArraySlice<UInt8>)
    /// The peer finished its direction.
    func streamFinished()
    /// The stream ended abruptly; the handler is forgotten after this call.
    func streamReset(_ failure: Failure)
    /// The stream's send buffer drained after `write` asked to wait.
    func streamWritable()
}

extension StreamHandler {
    public func streamAccepted(metadata: [UInt8]) {}
}

/// Handler for a stream whose incoming bytes do not matter (announcements, one-shot replies):
/// it consumes them so credit keeps flowing.
public final class DiscardingHandler: StreamHandler {
    private let connection: MuxConnection
    /// Set after `openStream` returns when this handler serves a stream we open.
    public var stream: StreamID
    /// Called when the peer accepts a stream we opened (a node learns the gateway took its announcement).
    private let onAccepted: (() -> Void)?

    public init(connection: MuxConnection, stream: StreamID = 0, onAccepted: (() -> Void)? = nil) {
        self.connection = connection
        self.stream = stream
        self.onAccepted = onAccepted
    }

    public func streamAccepted(metadata: [UInt8]) { onAccepted?() }

    public func streamReceived(_ bytes: ArraySlice<UInt8>) { connection.consumed(bytes.count, on: stream) }
    public func streamFinished() {}
    public func streamReset(_ failure: Failure) {}
    public func streamWritable() {}
}
