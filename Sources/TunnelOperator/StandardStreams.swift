import Foundation
import TunnelIO

// stdin and stdout for the operator commands that splice a stream to them (`tunnel proxy`,
// `tunnel logs`): pipes, sockets and terminals directly, files and devices through a pipe.

/// An input that ends at once: the operator's direction of a stream it has nothing to say on
/// (`tunnel logs`; the node keeps sending regardless, and stops when the stream is reset).
func closedInput(loop: EventLoop) throws -> StreamConnection {
    let (readEnd, writeEnd) = try makePipe()
    close(writeEnd)
    do {
        return try StreamConnection.openPipe(loop: loop, fileDescriptor: readEnd)
    } catch {
        close(readEnd)
        throw error
    }
}

/// The local ends of a splice: `makeInput`, then standard output; the input is closed again if
/// standard output cannot be used. The error is a sentence naming the side that failed.
func spliceEnds(loop: EventLoop, input makeInput: (EventLoop) throws -> StreamConnection) throws(OperatorFailure) -> (
    input: StreamConnection, output: StreamConnection
) {
    let input: StreamConnection
    do { input = try makeInput(loop) } catch { throw OperatorFailure("cannot use stdin: \(error)", cause: .local) }
    do {
        return (input, try standardOutput(loop: loop))
    } catch {
        input.close()
        throw OperatorFailure("cannot use stdout: \(error)", cause: .local)
    }
}

/// Standard input for a splice. A pipe, socket or terminal is used as it is. A file or a device
/// (`< file`, `< /dev/null`) cannot be polled by libuv, so a thread of its own copies it into a
/// pipe with plain blocking reads and writes, and closes the pipe at the end of the file; the
/// loop reads the pipe. The thread touches only the two descriptors, never the loop.
func standardInput(loop: EventLoop) throws -> StreamConnection {
    if let direct = try? StreamConnection.openPipe(loop: loop, fileDescriptor: 0) { return direct }
    let (readEnd, writeEnd) = try makePipe()
    let reader: StreamConnection
    do {
        reader = try StreamConnection.openPipe(loop: loop, fileDescriptor: readEnd)
    } catch {
        close(readEnd)
        close(writeEnd)
        throw error
    }
    let copier = Thread {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            // The end of the file, a read error, or a reader gone (EPIPE; SIGPIPE is ignored).
            guard count > 0,
                buffer.withUnsafeBytes({ writeAll(UnsafeRawBufferPointer(rebasing: $0[..<count]), to: writeEnd) })
            else { break }
        }
        close(writeEnd)
    }
    copier.start()
    return reader
}

/// Standard output for a splice. A pipe, socket or terminal is used as it is. Anything else
/// (`> file`, `> /dev/null`) cannot be polled by libuv, so the splice writes into a pipe whose
/// other end is copied to standard output here with plain writes, which a file or a device
/// takes without blocking for long. The copy ends when the splice closes the pipe.
func standardOutput(loop: EventLoop) throws -> StreamConnection {
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

func makePipe() throws(OperatorFailure) -> (readEnd: Int32, writeEnd: Int32) {
    var descriptors: [Int32] = [-1, -1]
    guard pipe(&descriptors) == 0 else {
        throw OperatorFailure("cannot make a pipe: \(String(cString: strerror(errno)))", cause: .local)
    }
    // Close-on-exec: a child the command starts must not hold a write end open.
    for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    return (descriptors[0], descriptors[1])
}

/// Writes every byte to `descriptor`, retrying after interruptions and short writes.
func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> Bool {
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
func standardOutputReaderIsGone() -> Bool {
    var descriptor = pollfd(fd: 1, events: 0, revents: 0)
    return poll(&descriptor, 1, 0) == 1 && descriptor.revents & Int16(POLLERR) != 0
}
