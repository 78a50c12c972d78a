import Multiplex
import TunnelIO
import TunnelRuntime

/// The node's end of one `logs` stream: it reads a source and writes whole lines into the
/// stream, waiting whenever the stream asks it to (backpressure), until the source is done
/// (a one-shot read) or the stream is reset (the operator went away; the gateway resets the
/// node's stream when the operator's does or when the operator's connection ends).
///
/// The operator's FIN is not a reason to stop: an operator's side has nothing to send, and
/// closes its direction at once.
protocol LogReader: StreamHandler {
    /// Begins reading, once the stream is accepted.
    func start()
    /// Stops reading and releases everything (descriptors, timers, the child process). Idempotent.
    func stop()
}

/// What both readers do with their stream: write, remember a full send buffer, end once.
final class LogStreamOutput {
    let connection: MuxConnection
    let stream: StreamID
    /// The last write filled the stream's send buffer: wait for `streamWritable`.
    private(set) var isBlocked = false
    private(set) var isEnded = false

    init(connection: MuxConnection, stream: StreamID) {
        self.connection = connection
        self.stream = stream
    }

    /// Writes `bytes`; false when the stream is gone (the reader must stop).
    func write(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        do {
            isBlocked = try !connection.write(bytes[...], on: stream)
            return true
        } catch {
            isEnded = true
            return false
        }
    }

    func writable() {
        isBlocked = false
    }

    /// Finishes the stream after the queued lines (a one-shot read is complete).
    func finish() {
        guard !isEnded else { return }
        isEnded = true
        connection.finish(stream)
    }

    /// Nothing more is written: the reader stopped, or the stream is gone.
    func end() {
        isEnded = true
    }

    /// Bytes from the operator are not expected; consuming them keeps the window honest.
    func consume(_ count: Int) {
        connection.consumed(count, on: stream)
    }
}

/// Reads a file source: the last lines, then, when following, a poll every
/// `LogService.pollMilliseconds` for appended lines, rotation and new files.
final class FileLogStream: LogReader {
    /// Bytes read from files per loop turn, so a large backlog does not hold up the client.
    static let readBudget = 256 * 1024

    private let output: LogStreamOutput
    private let files: LogFiles
    private let follow: Bool
    private let timer: LoopTimer

    init(connection: MuxConnection, stream: StreamID, files: LogFiles, follow: Bool) {
        output = LogStreamOutput(connection: connection, stream: stream)
        self.files = files
        self.follow = follow
        timer = LoopTimer(loop: connection.loop)
    }

    func start() {
        pump()
    }

    /// Sends what is ready, within the budget, then decides when to read next: at once when
    /// more is ready, after the stream drained when it is full, at the next poll when caught up.
    /// The timer's closures hold this reader, which is what keeps it alive until `stop`.
    private func pump() {
        guard !output.isEnded, !output.isBlocked else { return }
        var bytes: [UInt8] = []
        let more = files.read(budget: Self.readBudget, into: &bytes)
        guard output.write(bytes) else { return stop() }
        if !follow, files.isComplete {
            output.finish()
            stop()
        } else if output.isBlocked {
            return
        } else if more {
            timer.start(after: 0) { [self] in pump() }
        } else {
            timer.start(after: LogService.pollMilliseconds) { [self] in
                var rescanned: [UInt8] = []
                files.rescan(into: &rescanned)
                guard output.write(rescanned) else { return stop() }
                pump()
            }
        }
    }

    func stop() {
        output.end()
        timer.close()
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) { output.consume(bytes.count) }
    func streamFinished() {}
    func streamReset(_ failure: Failure) { stop() }

    func streamWritable() {
        guard !output.isEnded else { return }
        output.writable()
        timer.start(after: 0) { [self] in pump() }
    }
}

/// Reads a journald unit through a journalctl child process: its output is cut into lines,
/// filtered and written into the stream; reading the pipe pauses while the stream is full.
/// The child is ended (SIGTERM) when the stream is reset; when it ends by itself (a one-shot
/// read, or an error it reported in its output) the stream is finished.
final class JournalLogStream: LogReader {
    private let output: LogStreamOutput
    private let child: ChildProcess
    private let filter: LineFilter
    private var lines = LineFramer()

    init(connection: MuxConnection, stream: StreamID, arguments: [String], filter: LineFilter) throws(IOError) {
        output = LogStreamOutput(connection: connection, stream: stream)
        self.filter = filter
        let logger = connection.logger
        child = try ChildProcess(loop: connection.loop, arguments: arguments) { termination in
            guard termination.status != 0 || termination.signal != 0 else { return }
            logger.debug(
                "journalctl ended",
                metadata: ["exit.status": "\(termination.status)", "exit.signal": "\(termination.signal)"])
        }
    }

    /// The pipe's read handler holds this reader until `stop` closes the pipe.
    func start() {
        do {
            try child.output.startReading { [self] event in
                var bytes: [UInt8] = []
                switch event {
                case .data(let data):
                    lines.feed(data, filter: filter, into: &bytes)
                    guard output.write(bytes) else { return stop() }
                    if output.isBlocked { child.output.stopReading() }
                case .end, .error:
                    lines.flush(filter: filter, into: &bytes)
                    if output.write(bytes) { output.finish() }
                    stop()
                }
            }
        } catch {
            output.finish()
            stop()
        }
    }

    func stop() {
        output.end()
        child.terminate()
        child.output.close()
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) { output.consume(bytes.count) }
    func streamFinished() {}
    func streamReset(_ failure: Failure) { stop() }

    func streamWritable() {
        guard !output.isEnded else { return }
        output.writable()
        try? child.output.resumeReading()
    }
}
