import Foundation
import TunnelIO

// stdin and stdout for the operator commands that splice a stream to them (`tunnel proxy`,
// `tunnel logs`).

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

func makePipe() throws(CommandFailure) -> (readEnd: Int32, writeEnd: Int32) {
    var descriptors: [Int32] = [-1, -1]
    guard pipe(&descriptors) == 0 else { throw .failed("cannot make a pipe: \(String(cString: strerror(errno)))") }
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
