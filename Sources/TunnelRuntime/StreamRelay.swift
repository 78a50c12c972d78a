import Multiplex

/// Joins a stream the peer opened on one mux connection (an operator's, at the gateway) to a
/// stream the relay opens on another (to the node). Bytes move without a copy: the slices go
/// straight into the other session's queue. Credit goes back to a sender only while the other
/// side keeps up, so the relay holds at most a window plus a send buffer per direction.
public final class StreamRelay {
    public enum Outcome {
        /// The second stream's peer accepted it, with this metadata; time to accept the first.
        case accepted([UInt8])
        /// Both directions finished (nil), or either stream was reset; the relay is over.
        case ended(Failure?)
    }

    /// Which way bytes went, for a tap: from the first stream's peer (the operator) or the second's (the node).
    public enum Direction: Sendable {
        case fromFirst
        case fromSecond
    }

    /// One end of the relay, and the stream handler of its connection's stream.
    public final class End: StreamHandler {
        let connection: MuxConnection
        public fileprivate(set) var stream: StreamID
        /// Weak: the relay holds both ends. Once the relay has ended and been dropped, an end can
        /// still get callbacks (it stays its connection's handler until the stream is swept, and a
        /// connection closing fails every stream); it then only gives credit back.
        weak var other: End?
        weak var relay: StreamRelay?
        /// Bytes received here and queued on the other side, whose credit is held back because
        /// the other side asked its writer to wait.
        private var heldBack = 0
        private var otherIsFull = false
        /// Bytes this end's peer sent through the relay.
        public private(set) var bytesReceived = 0
        /// This end's peer finished its direction.
        fileprivate var finished = false

        init(connection: MuxConnection, stream: StreamID) {
            self.connection = connection
            self.stream = stream
        }

        public func streamAccepted(metadata: [UInt8]) {
            relay?.report(.accepted(metadata))
        }

        public func streamReceived(_ bytes: ArraySlice<UInt8>) {
            guard let relay, let other else {
                connection.consumed(bytes.count, on: stream)
                return
            }
            // What the tap cannot take (a recorder that cannot write) is not relayed: the relay ends.
            if let failure = relay.tap?(bytes, self === relay.first ? .fromFirst : .fromSecond) {
                connection.consumed(bytes.count, on: stream)
                relay.cut(failure)
                return
            }
            bytesReceived += bytes.count
            // A slice shares the whole TLS read it came from (up to 256 KiB, many streams' frames);
            // bytes that will wait behind a full queue get storage of their own, so a stalled
            // stream holds its window's worth and not every read its frames came in.
            let queued = otherIsFull ? Array(bytes)[...] : bytes
            do {
                let keepGoing = try other.connection.write(queued, on: other.stream)
                if keepGoing && !otherIsFull {
                    connection.consumed(bytes.count, on: stream)
                } else {
                    heldBack += bytes.count
                    otherIsFull = true
                }
            } catch {
                connection.reset(stream, code: .cancel)
                relay.report(.ended(Failure(.cancel, "the other side of the relay is gone")))
            }
        }

        public func streamFinished() {
            finished = true
            guard let other else { return }
            other.connection.finish(other.stream)
            if other.finished { relay?.report(.ended(nil)) }
        }

        public func streamReset(_ failure: Failure) {
            guard let other else { return }
            relay?.resetFrom = self === relay?.first ? .fromFirst : .fromSecond
            // When the node's whole session ends under the stream, the operator hears that, not
            // the session's own code (often a plain no-error).
            let code = self === relay?.second && connection.isEnding ? TunnelErrorCode.nodeDisconnected : failure.code
            other.connection.reset(other.stream, code: code)
            relay?.report(.ended(failure))
        }

        public func streamWritable() {
            // This side drained: the bytes the other end held back are delivered now.
            guard let other, other.otherIsFull else { return }
            other.releaseHeldCredit()
        }

        /// Gives the sender the credit of bytes held back, and stops holding. Also when the relay
        /// ends, since its sender can send nothing more on this stream: the `.writable` that would
        /// release them comes when the other stream's last bytes drain, and by then the owner
        /// has let go of the relay (and the other end with it), so nobody would pass it on.
        /// Credit never given back shrinks the sender's connection window for good, until it
        /// can send on no stream at all (the CI soak's stalls with `RelaySizing`).
        fileprivate func releaseHeldCredit() {
            otherIsFull = false
            let held = heldBack
            heldBack = 0
            if held > 0 { connection.consumed(held, on: stream) }
        }
    }

    public let first: End
    public let second: End
    private var onEvent: ((StreamRelay, Outcome) -> Void)?
    /// Sees every byte before it is relayed, in order per direction (a session recorder). It must
    /// not keep the slices beyond the call. A failure it returns ends the relay instead: both
    /// streams are reset with its code and `.ended` reports it, and the bytes go nowhere.
    public var tap: ((ArraySlice<UInt8>, Direction) -> Failure?)?
    /// Which side's stream was reset first, ending the relay (its reset was passed on to the
    /// other side); nil while both run or after both finished.
    public fileprivate(set) var resetFrom: Direction?

    /// Prepares a relay from `first` (already open, not yet accepted) to a stream that
    /// `openSecond` will open on `secondConnection`.
    public init(
        first: (MuxConnection, StreamID), secondConnection: MuxConnection,
        onEvent: @escaping (StreamRelay, Outcome) -> Void
    ) {
        self.first = End(connection: first.0, stream: first.1)
        second = End(connection: secondConnection, stream: 0)
        self.onEvent = onEvent
        self.first.other = second
        second.other = self.first
        self.first.relay = self
        second.relay = self
    }

    /// Opens the second stream, carrying `metadata`; its acceptance or reset is reported.
    public func openSecond(metadata: [UInt8], interactive: Bool) throws(MultiplexError) {
        second.stream = try second.connection.openStream(metadata: metadata, interactive: interactive, handler: second)
    }

    /// Resets both streams and reports the end: for a tap that cannot do its job (a recorder
    /// that cannot record what passes).
    public func cut(_ failure: Failure) {
        first.connection.reset(first.stream, code: failure.code)
        second.connection.reset(second.stream, code: failure.code)
        report(.ended(failure))
    }

    fileprivate func report(_ outcome: Outcome) {
        guard let onEvent else { return }
        if case .ended = outcome {
            self.onEvent = nil
            first.releaseHeldCredit()
            second.releaseHeldCredit()
        }
        onEvent(self, outcome)
    }
}
