import Glibc
import Logging
import Multiplex
import TunnelIO
import TunnelRuntime

/// The node's built-in `shell` service: each stream gets a login shell of one configured user
/// on its own pseudo-terminal, framed as `docs/SHELL.md` says. Loop-confined.
public final class ShellService: BuiltInService {
    public let user: String
    /// Sessions whose shell, terminal or stream is not yet done.
    private var sessions: [ObjectIdentifier: ShellSession] = [:]

    /// Shells still running or winding down.
    public var sessionCount: Int { sessions.count }

    /// Checks now that `user` exists and that this process may become it, so a misconfigured
    /// client says so when it starts rather than to the first operator who asks for a shell.
    public init(user: String) throws(Failure) {
        try LoginShell.check(user: user)
        self.user = user
    }

    public func serve(_ stream: StreamID, on connection: MuxConnection, parameters: [String: String]) {
        do throws(Failure) {
            let session = try ShellSession(
                connection: connection, stream: stream, user: user, parameters: try ShellParameters(parameters)
            ) { [unowned self] session in
                sessions[ObjectIdentifier(session)] = nil
            }
            sessions[ObjectIdentifier(session)] = session
        } catch {
            connection.logger.notice(
                "shell refused",
                metadata: ["stream.id": "\(stream)", "shell.user": "\(user)", "reason": "\(error.reason)"])
            // ACCEPT carries the sentence (a RESET carries only a code), then the RESET.
            try? connection.accept(stream, metadata: TunnelProtocol.encode(StreamRefusal(message: error.reason)))
            connection.reset(stream, code: error.code)
        }
    }
}

/// One shell stream on the node: pty output becomes data frames, data frames become pty input,
/// resize frames resize the pty; when the shell has exited and its output is drained, an exit
/// frame carries its status and the stream is finished. An operator who goes away (finish or
/// reset) hangs the shell up.
private final class ShellSession {
    /// After the shell exits, output still on its way is read until the terminal reports EOF/EIO;
    /// a background job that keeps the terminal open gets this long before it is hung up.
    static let drainAfterExitMilliseconds: UInt64 = 500
    /// A shell that ignores SIGHUP is killed this long after it.
    static let hangupGraceMilliseconds: UInt64 = 5_000

    private let logger: Logger
    private let childWatcher: SignalWatcher
    private let timer: LoopTimer
    private let shell: LoginShell
    private let streamID: StreamID
    /// Weak: the connection owns the stream's handler, which owns this session through its
    /// events, so a late event (writable, say) after the session is done still finds it.
    private weak var stream: ShellStream?
    private var outputEnded = false
    /// The exit frame went out and the stream was finished, or the stream was reset: either way
    /// nothing more is sent.
    private var streamDone = false
    /// Whether the operator's direction is over (finished or reset).
    private var operatorGone = false
    private var onDone: ((ShellSession) -> Void)?

    /// Starts the shell and accepts the stream. Throws, with nothing left running and the stream
    /// untouched for the caller to refuse, when the shell cannot start.
    init(
        connection: MuxConnection, stream id: StreamID, user: String, parameters: ShellParameters,
        onDone: @escaping (ShellSession) -> Void
    ) throws(Failure) {
        logger = connection.logger
        streamID = id
        var session: ShellSession?
        // Watching before the fork, so the child's exit is noticed however soon it comes.
        do {
            childWatcher = try SignalWatcher(loop: connection.loop, signal: .childExited) { _ in
                session?.childMayHaveExited()
            }
        } catch {
            throw Failure(TunnelErrorCode.serviceUnreachable, "cannot watch for the shell's exit: \(error)")
        }
        do {
            shell = try LoginShell(loop: connection.loop, user: user, parameters: parameters)
        } catch {
            childWatcher.close()
            throw error
        }
        timer = LoopTimer(loop: connection.loop)
        self.onDone = onDone
        let stream = ShellStream(connection: connection, stream: id, receiving: .toNode) { [self] event in handle(event)
        }
        self.stream = stream
        session = self
        var metadata: Logger.Metadata = [
            "stream.id": "\(id)", "shell.user": "\(user)", "shell.pid": "\(shell.pid)",
            "shell.size": "\(parameters.columns)x\(parameters.rows)", "shell.term": "\(parameters.term)",
        ]
        if let command = parameters.command { metadata["shell.command"] = "\(command)" }
        logger.info("shell started", metadata: metadata)
        do {
            try connection.accept(id, handler: stream)
            try shell.terminal.startReading { [unowned self] event in terminalRead(event) }
        } catch {
            // The stream or the terminal is unusable: end the shell, which then winds down alone.
            logger.warning("shell stream unusable", metadata: ["stream.id": "\(id)", "error": "\(error)"])
            streamDone = true
            operatorGone = true
            connection.reset(id, code: .internalError)
            closeTerminal()
            hangUp()
        }
    }

    // MARK: - The operator's frames

    private func handle(_ event: ShellStream.Event) {
        switch event {
        case .data(let bytes, let delivered):
            guard !shell.terminal.isClosed else { return delivered() }
            do {
                try shell.terminal.write(bytes) { _ in delivered() }
            } catch {
                delivered()
            }
        case .resize(let columns, let rows):
            let status = shell.resize(columns: columns, rows: rows)
            if status != 0 { logger.debug("cannot resize the shell's terminal", metadata: ["errno": "\(-status)"]) }
        case .writable:
            if !outputEnded { try? shell.terminal.resumeReading() }
        case .finished:
            operatorGone = true
            // The operator stopped sending; its reading side may still want the last output and the exit.
            if shell.exitStatus == nil { hangUp() }
            finishIfDone()
        case .reset(let failure):
            logger.info("shell stream reset", metadata: ["stream.id": "\(streamID)", "reason": "\(failure)"])
            operatorGone = true
            streamDone = true
            // Nobody reads the output any more: hanging the terminal up ends the whole session.
            closeTerminal()
            hangUp()
            finishIfDone()
        case .accepted, .exit:
            break // the node opens no shell streams, and the decoder refuses exit frames towards it
        }
    }

    // MARK: - The shell's side

    private func terminalRead(_ event: StreamConnection.ReadEvent) {
        switch event {
        case .data(let bytes):
            do {
                if try stream?.send(.data(Array(bytes)[...])) != true { shell.terminal.stopReading() }
            } catch {
                shell.terminal.stopReading()
            }
        case .end, .error:
            // EIO once every process has closed the terminal's other side: the output is complete.
            closeTerminal()
            childMayHaveExited()
        }
    }

    /// Reaps the shell if it has exited, and sends the exit frame once both the exit and the end
    /// of the output are known, whichever came second (`sendExit` waits for both).
    private func childMayHaveExited() {
        if shell.exitStatus == nil, shell.reap(), !outputEnded {
            timer.start(after: Self.drainAfterExitMilliseconds) { [unowned self] in
                closeTerminal()
                sendExit()
            }
        }
        sendExit()
    }

    /// Once the shell has exited and its output is all sent: the exit frame, then FIN.
    private func sendExit() {
        guard let status = shell.exitStatus, outputEnded else { return }
        timer.stop()
        if !streamDone {
            streamDone = true
            logger.info(
                "shell exited",
                metadata: ["stream.id": "\(streamID)", "shell.pid": "\(shell.pid)", "shell.exit_status": "\(status)"])
            _ = try? stream?.send(.exit(status: status))
            stream?.finish()
        }
        finishIfDone()
    }

    /// SIGHUP to the shell's session, as a terminal that goes away sends it (its jobs too, not
    /// only the shell's group), and SIGKILL to the whole session if the shell is still there
    /// after the grace period.
    private func hangUp() {
        guard shell.exitStatus == nil, !timer.isActive else { return }
        shell.signalSession(SIGHUP)
        timer.start(after: Self.hangupGraceMilliseconds) { [unowned self] in
            logger.notice("shell ignored SIGHUP; killing its session", metadata: ["shell.pid": "\(shell.pid)"])
            shell.signalSession(SIGKILL)
        }
    }

    /// No output comes after this; closing the master also hangs up whatever still holds the terminal.
    private func closeTerminal() {
        outputEnded = true
        shell.terminal.close()
    }

    /// Done once the shell is reaped, its terminal closed, and the stream over both ways: only
    /// then can no callback reach this session any more.
    private func finishIfDone() {
        guard shell.exitStatus != nil, shell.terminal.isClosed, streamDone, operatorGone, let onDone else { return }
        self.onDone = nil
        timer.close()
        childWatcher.close()
        onDone(self)
    }
}
