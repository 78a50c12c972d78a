import Glibc
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelWire

/// stdin or stdout as the loop can use it. A pipe, socket or terminal is polled on the loop; a
/// regular file or a device such as /dev/null cannot be polled, but never keeps anyone waiting
/// either, so it is read and written directly (`tunnel shell node-17 <script >log`).
enum StandardStream {
    case polled(StreamConnection)
    case direct(Int32)

    static func open(loop: EventLoop, descriptor: Int32) throws(IOError) -> StandardStream {
        var status = stat()
        if fstat(descriptor, &status) == 0, isatty(descriptor) == 0,
            status.st_mode & S_IFMT == S_IFREG || status.st_mode & S_IFMT == S_IFCHR
        {
            return .direct(descriptor)
        }
        return .polled(try StreamConnection.openPipe(loop: loop, fileDescriptor: descriptor))
    }

    func close() {
        if case .polled(let connection) = self { connection.close() }
    }
}

/// Joins this process's stdin and stdout to a node's shell: keys become data frames, a window
/// change becomes a resize frame, output goes to stdout, and the exit frame's status is the
/// outcome, reported once stdout has taken everything. Loop-confined.
///
/// The end of stdin becomes a Ctrl-D, which ends a shell at its prompt. A terminal takes a
/// Ctrl-D that arrives before the shell reads its prompt (or between a command and the next
/// prompt) as an empty line, so once stdin has ended, every time the shell prints something and
/// then falls quiet, another Ctrl-D follows: as with a pipe, every read after the end sees the end.
final class TerminalShell {
    /// What the terminal driver turns into end-of-file at the start of a line (VEOF).
    static let endOfInput: UInt8 = 0x04
    /// How long the shell's output must pause, after stdin ended, before Ctrl-D is pressed again.
    static let quietBeforeEndOfInputMilliseconds: UInt64 = 500

    private let input: StandardStream
    private let output: StandardStream
    private var watchers: [SignalWatcher] = []
    private let endOfInputTimer: LoopTimer
    private var shell: ShellStream!
    private let node: String
    private var inputEnded = false
    /// For reading stdin directly: one frame's worth at a time.
    private lazy var inputBuffer = [UInt8](repeating: 0, count: ShellFraming.maxPayloadLength)
    private var exitStatus: Int32?
    private var onEnd: ((Result<Int32, OperatorFailure>) -> Void)?

    init(
        loop: EventLoop, connection: MuxConnection, node: String, parameters: ShellParameters, interactive: Bool,
        trafficInteractive: Bool, onEnd: @escaping (Result<Int32, OperatorFailure>) -> Void
    ) throws(OperatorFailure) {
        self.node = node
        self.onEnd = onEnd
        endOfInputTimer = LoopTimer(loop: loop)
        do {
            input = try StandardStream.open(loop: loop, descriptor: STDIN_FILENO)
        } catch {
            endOfInputTimer.close()
            throw OperatorFailure("cannot use stdin: \(error)", cause: .local)
        }
        do {
            output = try StandardStream.open(loop: loop, descriptor: STDOUT_FILENO)
        } catch {
            input.close()
            endOfInputTimer.close()
            throw OperatorFailure("cannot use stdout: \(error)", cause: .local)
        }
        do {
            // A hung-up terminal: nobody is left to type or read, so end like the remote shell would.
            watchers.append(try SignalWatcher(loop: loop, signal: .hangup) { [unowned self] _ in end(.success(129)) })
            if interactive {
                watchers.append(
                    try SignalWatcher(loop: loop, signal: .windowChange) { [unowned self] _ in
                        let size = LocalTerminal.size()
                        _ = try? shell.send(.resize(columns: size.columns, rows: size.rows))
                    })
            }
            shell = try ShellStream.open(
                on: connection, node: node, parameters: parameters,
                interactive: trafficInteractive
            ) { [unowned self] event in handle(event) }
        } catch {
            close()
            throw OperatorFailure("cannot open a shell on \(node): \(error)", cause: .ended)
        }
    }

    /// Closes stdin, stdout, the timer and the signal watchers; the command's teardown, after
    /// which no outcome is reported any more (the command already has one).
    func close() {
        onEnd = nil
        input.close()
        output.close()
        endOfInputTimer.close()
        for watcher in watchers { watcher.close() }
        watchers.removeAll()
    }

    private func handle(_ event: ShellStream.Event) {
        switch event {
        case .accepted:
            switch input {
            case .polled(let connection):
                do {
                    try connection.startReading { [unowned self] event in inputRead(event) }
                } catch {
                    end(.failure(OperatorFailure("cannot read stdin: \(error)", cause: .local)))
                }
            case .direct(let descriptor):
                pumpInput(descriptor)
            }
        case .data(let bytes, let delivered):
            write(bytes, delivered: delivered)
            if inputEnded, exitStatus == nil {
                endOfInputTimer.start(after: Self.quietBeforeEndOfInputMilliseconds) { [unowned self] in
                    _ = send([Self.endOfInput])
                }
            }
        case .exit(let status):
            exitStatus = status
            endOfInputTimer.stop()
        case .finished:
            shell.finish()
            guard case .polled(let connection) = output else { return reportExit() }
            // The shutdown completes once stdout took every queued byte: only then is it safe to exit.
            do {
                try connection.shutdown { [unowned self] _ in reportExit() }
            } catch {
                reportExit()
            }
        case .writable:
            guard !inputEnded else { return }
            switch input {
            case .polled(let connection): try? connection.resumeReading()
            case .direct(let descriptor): pumpInput(descriptor)
            }
        case .reset(let failure):
            if let refusal = shell.refusal {
                end(.failure(.streamEnded(failure, refusal.message)))
            } else if failure.code.isApplicationCode || failure.code == .refusedStream {
                end(
                    .failure(
                        .streamEnded(
                            failure, TunnelErrorCode.explain(failure, node: node, service: ShellStream.serviceName))))
            } else {
                end(.failure(.streamEnded(failure, "the shell on \(node) ended: \(failure.reason)")))
            }
        case .resize:
            break // the decoder refuses resize frames towards the operator
        }
    }

    /// Output goes to stdout, and its credit back once stdout took it, so a slow reader of a pipe
    /// slows the shell. If stdout is gone there is nobody to tell; the shell still ends.
    private func write(_ bytes: ArraySlice<UInt8>, delivered: @escaping () -> Void) {
        switch output {
        case .polled(let connection):
            do {
                try connection.write(bytes) { _ in delivered() }
            } catch {
                delivered()
            }
        case .direct(let descriptor):
            defer { delivered() }
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    private func inputRead(_ event: StreamConnection.ReadEvent) {
        guard case .polled(let connection) = input else { return }
        switch event {
        case .data(let bytes):
            if !send(Array(bytes)[...]) { connection.stopReading() }
        case .end, .error:
            endInput()
        }
    }

    /// Reads stdin directly until the stream asks to wait or the input ends.
    private func pumpInput(_ descriptor: Int32) {
        while !inputEnded {
            let count = inputBuffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return endInput() }
            guard send(inputBuffer[..<count]) else { return }
        }
    }

    /// Sends keys; false asks to wait for `.writable` (also when the stream is gone: its reset says why).
    private func send(_ bytes: ArraySlice<UInt8>) -> Bool {
        (try? shell.send(.data(bytes))) ?? false
    }

    private func endInput() {
        inputEnded = true
        _ = send([Self.endOfInput])
    }

    private func reportExit() {
        if let exitStatus {
            end(.success(exitStatus))
        } else {
            end(.failure(OperatorFailure("the shell on \(node) ended without an exit status", cause: .ended)))
        }
    }

    private func end(_ outcome: Result<Int32, OperatorFailure>) {
        let onEnd = self.onEnd
        self.onEnd = nil
        onEnd?(outcome)
    }
}
