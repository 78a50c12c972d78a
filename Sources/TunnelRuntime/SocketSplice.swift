import Multiplex
import TunnelIO

/// Joins one mux stream to a local byte stream: a TCP socket (the node's sshd, an operator's
/// forwarded connection) or a pair of pipes (stdin and stdout of `tunnel proxy`).
///
/// Backpressure both ways: when the stream's send buffer is full the splice stops reading the
/// socket until the stream is writable again; bytes from the stream are reported consumed only
/// once the socket's kernel buffer took them, so a slow local reader stops the remote sender.
/// Half-close both ways: EOF on the socket finishes the stream; the peer's FIN shuts the
/// socket's write side (or closes the output pipe).
public final class SocketSplice: StreamHandler {
    private let connection: MuxConnection
    /// Set after `openStream` returns when the splice serves a stream we open.
    public var stream: StreamID
    private let input: StreamConnection
    private let output: StreamConnection
    private var inputEnded = false
    private var outputEnded = false
    private var ended = false
    /// `start` ran: the local side is connected, so the peer's FIN can be passed on to it.
    private var started = false
    /// The local reader went away after one direction had finished: what still arrives from the
    /// stream is consumed and dropped until the peer finishes too.
    private var discardingOutput = false
    /// While discarding before the peer's FIN: how long the peer gets to finish before the stream
    /// is reset after all (a peer that keeps sending to a reader that left).
    private var finishGrace: LoopTimer?
    static let finishGraceMilliseconds: UInt64 = 1_000
    /// For a stream we open: read the local side only once the peer accepted.
    private let startWhenAccepted: Bool
    /// Called once, when both directions are done or the splice was torn down.
    private var onEnd: ((Failure?) -> Void)?

    /// `input` and `output` are the same object for a socket, two objects for stdin/stdout.
    public init(
        connection: MuxConnection, stream: StreamID, input: StreamConnection, output: StreamConnection,
        startWhenAccepted: Bool = false, onEnd: ((Failure?) -> Void)? = nil
    ) {
        self.connection = connection
        self.stream = stream
        self.input = input
        self.output = output
        self.startWhenAccepted = startWhenAccepted
        self.onEnd = onEnd
    }

    public convenience init(
        connection: MuxConnection, stream: StreamID, socket: StreamConnection,
        startWhenAccepted: Bool = false, onEnd: ((Failure?) -> Void)? = nil
    ) {
        self.init(
            connection: connection, stream: stream, input: socket, output: socket,
            startWhenAccepted: startWhenAccepted, onEnd: onEnd)
    }

    /// The gateway's reason, when it accepted only to refuse (the RESET follows).
    public private(set) var refusal: StreamRefusal?
    /// Bytes read from the local side into the stream, and written from the stream to it (metrics).
    public private(set) var bytesFromLocal = 0
    public private(set) var bytesToLocal = 0

    public func streamAccepted(metadata: [UInt8]) {
        if !metadata.isEmpty, let refusal = TunnelProtocol.decode(StreamRefusal.self, from: metadata) {
            self.refusal = refusal
            return
        }
        if startWhenAccepted { start() }
    }

    /// Starts moving bytes from the local side into the stream; the local side must be connected
    /// now. A FIN that came before (with the OPEN, or while the node was still dialing its
    /// service) is passed on here: a socket still connecting cannot be shut down.
    public func start() {
        guard !started, !ended else { return }
        started = true
        if outputEnded { shutDownOutput() }
        do {
            try input.startReading { [self] event in
                switch event {
                case .data(let bytes):
                    bytesFromLocal += bytes.count
                    do {
                        if try !connection.write(Array(bytes)[...], on: stream) { input.stopReading() }
                    } catch {
                        end(Failure(.cancel, "stream \(stream) is gone: \(error)"))
                    }
                case .end:
                    inputEnded = true
                    connection.finish(stream)
                    endIfDone()
                case .error(let error):
                    failLocally(Failure(.cancel, "local read failed: \(error)"))
                }
            }
        } catch {
            failLocally(Failure(.cancel, "cannot read the local side: \(error)"))
        }
    }

    public func streamReceived(_ bytes: ArraySlice<UInt8>) {
        let count = bytes.count
        guard !discardingOutput else {
            connection.consumed(count, on: stream)
            return
        }
        bytesToLocal += count
        do {
            // What the kernel takes at once is consumed now; the rest once its queued write is done.
            var sent = 0
            sent = try bytes.withUnsafeBytes { raw in
                try output.send(raw) { [self] error in
                    if let error { localReaderGone(error) }
                    connection.consumed(count - sent, on: stream)
                }
            }
            if sent > 0 { connection.consumed(sent, on: stream) }
        } catch {
            localReaderGone(error)
            connection.consumed(count, on: stream)
        }
    }

    /// The local reader is gone (EPIPE, reset). After one direction has finished, that is how a
    /// session ends normally (ssh exits once the server said goodbye, with the server's last bytes
    /// and FIN still on their way): the rest is dropped and the stream finishes cleanly, if the
    /// peer finishes within `finishGraceMilliseconds`. Otherwise nobody will ever consume this
    /// stream's bytes, so the stream is reset, or its window stays spent on the connection
    /// budget for good.
    private func localReaderGone(_ error: any Error) {
        guard !discardingOutput, !ended else { return }
        let failure = Failure(.cancel, "local write failed: \(error)")
        guard inputEnded || outputEnded else { return failLocally(failure) }
        discardingOutput = true
        guard !outputEnded else { return endIfDone() }
        let timer = LoopTimer(loop: connection.loop)
        timer.start(after: Self.finishGraceMilliseconds) { [self] in failLocally(failure) }
        finishGrace = timer
    }

    /// The local side failed: reset the stream (its unconsumed bytes go back to the connection's
    /// budget) and close the local side.
    private func failLocally(_ failure: Failure) {
        guard !ended else { return }
        connection.reset(stream, code: .cancel)
        end(failure)
    }

    public func streamFinished() {
        outputEnded = true
        if started { shutDownOutput() }
    }

    private func shutDownOutput() {
        // A shutdown completes once every queued write is out. On a socket it half-closes; a pipe
        // has no half-close (the shutdown itself fails), so there closing is how the reader sees EOF.
        let separateOutput = input !== output
        do {
            try output.shutdown { [self] _ in
                if separateOutput { output.close() }
                endIfDone()
            }
        } catch {
            output.close()
            endIfDone()
        }
    }

    public func streamReset(_ failure: Failure) {
        end(failure)
    }

    public func streamWritable() {
        guard !inputEnded, !ended else { return }
        try? input.resumeReading()
    }

    private func endIfDone() {
        if inputEnded && outputEnded { end(nil) }
    }

    private func end(_ failure: Failure?) {
        guard !ended else { return }
        ended = true
        finishGrace?.close()
        finishGrace = nil
        input.close()
        output.close()
        let onEnd = self.onEnd
        self.onEnd = nil
        onEnd?(failure)
    }
}
