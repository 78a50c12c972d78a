import ArgumentParser
import Foundation
import TunnelClient
import TunnelIO

public struct LogsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a node's logs: the sources its client serves (files under its log root, journald units).",
        discussion: """
            tunnel logs node-17 app -n 20
            tunnel logs node-17 k3s -f --since 1h --grep error
            -n takes the last lines of each file (or of the journal) before --grep keeps those containing \
            the text, as `tail -n N | grep -F TEXT` would. --since skips files not modified that recently. \
            -f follows across log rotation until Ctrl-C.
            """)

    @OptionGroup var options: OperatorOptions
    @Argument(help: "The node") var node: String
    @Argument(help: "The log source, by the name in the node's log-sources (optional when the node has only one)") var source: String?
    @Flag(name: .shortAndLong, help: "Keep printing new lines, across log rotation, until Ctrl-C") var follow = false
    @Option(name: [.customShort("n"), .customLong("lines")], help: "How many of the last lines to print first") var lines = LogRequest.defaultLines
    @Option(help: ArgumentHelp("Only files modified (journal entries written) this recently, e.g. 10m, 1h", valueName: "duration")) var since: String?
    @Option(help: ArgumentHelp("Only lines containing this text (case-sensitive; a fixed string, not a pattern)", valueName: "text")) var grep: String?

    public init() {}

    public func run() throws {
        let node = try checkedNodeName(node)
        let request = try request()
        let (settings, logger) = try options.settingsAndLogger()
        var message: String?
        let code = try withOperatorConnection(settings, logger: logger) { loop, client, connection, finish in
            // Set when the command ends another way (Ctrl-C): the stream is then cut on purpose.
            var stopping = false
            let input: StreamConnection
            let output: StreamConnection
            do {
                input = try closedInput(loop: loop)
            } catch {
                message = "\(error)"
                finish(CommandFailure.failureExitCode)
                return nil
            }
            do {
                output = try standardOutput(loop: loop)
            } catch {
                input.close()
                message = "cannot write to standard output: \(error)"
                finish(CommandFailure.failureExitCode)
                return nil
            }
            client.splice(on: connection, node: node, service: LogService.serviceName, parameters: request.parameters,
                          interactive: false, input: input, output: output) { failure in
                guard !stopping else { return }
                // A reader that went away (`| head`) has had enough; that is no failure.
                if let failure, !standardOutputReaderIsGone() {
                    message = failure.message
                    finish(CommandFailure.failureExitCode)
                } else {
                    finish(0)
                }
            }
            return { stopping = true }
        }
        if let message { throw CommandFailure(message, exitCode: code) }
        if code != 0 { throw ExitCode(code) }
    }

    /// The request the flags make, checked here with the node's own rules.
    func request() throws(CommandFailure) -> LogRequest {
        var request = LogRequest(source: source, lines: lines, follow: follow, grep: grep)
        if let since {
            do throws(ValueProblem) {
                request.sinceSeconds = DurationText.seconds(try DurationText.parse(since))
                guard request.sinceSeconds! >= 1 else { throw ValueProblem("\"\(since)\" is shorter than a second") }
            } catch {
                throw .usage("--since: \(error.text)")
            }
        }
        do {
            try request.validate()
        } catch {
            throw .usage(error.message)
        }
        return request
    }
}

/// The operator's direction of a logs stream: it has nothing to say, so it ends at once (the
/// node keeps sending regardless; it stops when the stream is reset).
private func closedInput(loop: EventLoop) throws -> StreamConnection {
    let (readEnd, writeEnd) = try makePipe()
    close(writeEnd)
    do {
        return try StreamConnection.openPipe(loop: loop, fileDescriptor: readEnd)
    } catch {
        close(readEnd)
        throw error
    }
}

/// Standard output for a splice. A pipe, socket or terminal is used as it is. Anything else
/// (`> file`, `> /dev/null`) cannot be polled by libuv, so the splice writes into a pipe whose
/// other end is copied to standard output here with plain writes, which a file or a device
/// takes without blocking for long. The copy ends when the splice closes the pipe.
private func standardOutput(loop: EventLoop) throws -> StreamConnection {
    if let direct = try? StreamConnection.openPipe(loop: loop, fileDescriptor: 1) { return direct }
    let (readEnd, writeEnd) = try makePipe()
    let writer: StreamConnection
    let copier: StreamConnection
    do {
        writer = try StreamConnection.openPipe(loop: loop, fileDescriptor: writeEnd)
    } catch {
        close(readEnd)
        close(writeEnd)
        throw error
    }
    do {
        copier = try StreamConnection.openPipe(loop: loop, fileDescriptor: readEnd)
    } catch {
        close(readEnd)
        writer.close()
        throw error
    }
    do {
        try copier.startReading { event in
            guard case .data(let bytes) = event, writeAll(bytes, to: 1) else { return copier.close() }
        }
    } catch {
        copier.close()
        writer.close()
        throw error
    }
    return writer
}

private func makePipe() throws(CommandFailure) -> (readEnd: Int32, writeEnd: Int32) {
    var descriptors: [Int32] = [-1, -1]
    guard pipe(&descriptors) == 0 else { throw .failed("cannot make a pipe: \(String(cString: strerror(errno)))") }
    return (descriptors[0], descriptors[1])
}

/// Writes every byte to `descriptor`, retrying after interruptions and short writes.
private func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return false }
        offset += written
    }
    return true
}

/// Whether standard output is a pipe whose reader has closed it (POLLERR on the write end).
private func standardOutputReaderIsGone() -> Bool {
    var descriptor = pollfd(fd: 1, events: 0, revents: 0)
    return poll(&descriptor, 1, 0) == 1 && descriptor.revents & Int16(POLLERR) != 0
}
