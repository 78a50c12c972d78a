import Multiplex

/// One end of a shell stream (`docs/SHELL.md`), on the node or the operator: frames what it
/// sends, decodes what it receives, and reports both as events. Loop-confined.
///
/// Backpressure end to end: a received chunk's credit goes back to the sender only once every
/// data payload decoded from it was handed on (`delivered`), so a terminal or pty that stops
/// reading stops the far side's writer; `send` returning false asks the writer to wait for
/// `.writable`, as `MuxConnection.write` does.
public final class ShellStream: StreamHandler {
    /// The name of the node's built-in shell service.
    public static let serviceName = "shell"

    public enum Event {
        /// The node accepted the stream (the operator's end only; a refusal arrives as `.reset`).
        case accepted
        /// A data frame's payload. Call `delivered` exactly once, when it has been handed on
        /// (or dropped because its destination is gone).
        case data(ArraySlice<UInt8>, delivered: () -> Void)
        case resize(columns: UInt16, rows: UInt16)
        case exit(status: Int32)
        /// The peer finished its direction.
        case finished
        /// The stream takes more after `send` returned false.
        case writable
        /// The stream is over: reset by the peer, lost with its connection, or reset here because
        /// the peer broke the framing. Nothing follows.
        case reset(Failure)
    }

    private let connection: MuxConnection
    /// Set after `openStream` returns when this end opened the stream.
    public private(set) var stream: StreamID
    private var decoder: ShellFrameDecoder
    private let onEvent: (Event) -> Void
    private var ended = false
    /// The gateway's or node's reason, when it accepted only to refuse (the RESET follows).
    public private(set) var refusal: StreamRefusal?

    /// The end of a stream the peer opened; `receiving` is the direction of the frames that arrive here.
    public init(
        connection: MuxConnection, stream: StreamID, receiving: ShellDirection, onEvent: @escaping (Event) -> Void
    ) {
        self.connection = connection
        self.stream = stream
        decoder = ShellFrameDecoder(direction: receiving)
        self.onEvent = onEvent
    }

    /// The operator's end: asks the gateway for the shell service of `node`, with the terminal's
    /// type and size as the stream's parameters; a shell is interactive unless told otherwise.
    public static func open(
        on connection: MuxConnection, node: String, parameters: ShellParameters, interactive: Bool = true,
        onEvent: @escaping (Event) -> Void
    ) throws(OpenError) -> ShellStream {
        let shell = ShellStream(connection: connection, stream: 0, receiving: .toOperator, onEvent: onEvent)
        let request = OperatorRequest.connect(node: node, service: serviceName, parameters: parameters.dictionary)
        let metadata: [UInt8]
        do { metadata = try TunnelProtocol.encode(request) } catch { throw .encoding(error) }
        do {
            shell.stream = try connection.openStream(metadata: metadata, interactive: interactive, handler: shell)
        } catch { throw .stream(error) }
        return shell
    }

    /// Why `open` could not ask for the shell.
    public enum OpenError: Error, CustomStringConvertible {
        case encoding(WireEncodingError)
        case stream(MultiplexError)

        public var description: String {
            switch self {
            case .encoding(let error): "\(error)"
            case .stream(let error): "\(error)"
            }
        }
    }

    /// Sends one frame (data longer than a frame's limit as several); false asks to wait for
    /// `.writable`. Throws when the stream can no longer send.
    @discardableResult
    public func send(_ frame: ShellFrame) throws(MultiplexError) -> Bool {
        try connection.write(ShellFraming.encode(frame)[...], on: stream)
    }

    /// Ends this direction once everything sent is delivered.
    public func finish() {
        connection.finish(stream)
    }

    /// Abandons the stream both ways; no event follows.
    public func reset(code: ErrorCode) {
        ended = true
        connection.reset(stream, code: code)
    }

    public func streamAccepted(metadata: [UInt8]) {
        if !metadata.isEmpty, let refusal = TunnelProtocol.decode(StreamRefusal.self, from: metadata) {
            self.refusal = refusal
            return
        }
        onEvent(.accepted)
    }

    public func streamReceived(_ bytes: ArraySlice<UInt8>) {
        let credit = ChunkCredit(connection: connection, stream: stream, count: bytes.count)
        defer { credit.release() }
        guard !ended else { return }
        decoder.append(bytes)
        do {
            while !ended, let frame = try decoder.next() {
                switch frame {
                case .data(let payload):
                    credit.hold()
                    onEvent(.data(payload, delivered: credit.release))
                case .resize(let columns, let rows):
                    onEvent(.resize(columns: columns, rows: rows))
                case .exit(let status):
                    onEvent(.exit(status: status))
                }
            }
        } catch {
            reset(code: error.code)
            onEvent(.reset(error))
        }
    }

    public func streamFinished() {
        guard !ended else { return }
        onEvent(.finished)
    }

    public func streamReset(_ failure: Failure) {
        guard !ended else { return }
        ended = true
        onEvent(.reset(failure))
    }

    public func streamWritable() {
        guard !ended else { return }
        onEvent(.writable)
    }
}

/// The credit of one received chunk: returned to the sender once decoding it is done and every
/// data payload taken from it has been delivered. A stream reset meanwhile is fine: the
/// connection then returns the credit to its own budget.
private final class ChunkCredit {
    private let connection: MuxConnection
    private let stream: StreamID
    private let count: Int
    /// Decoding itself holds one; each data payload handed out holds one more.
    private var holds = 1

    init(connection: MuxConnection, stream: StreamID, count: Int) {
        self.connection = connection
        self.stream = stream
        self.count = count
    }

    func hold() {
        holds += 1
    }

    func release() {
        precondition(holds > 0, "shell stream credit released more often than held")
        holds -= 1
        if holds == 0 { connection.consumed(count, on: stream) }
    }
}
