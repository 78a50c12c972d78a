internal import CLibUV
internal import Glibc

/// Reading what has already arrived, without waiting for the loop.
extension StreamConnection {
    /// What `readNow` found in the kernel's receive buffer.
    public enum ReadNow {
        /// Bytes that had arrived, in the loop's shared read buffer: valid until the next read
        /// on this loop; copy what you keep.
        case data(UnsafeRawBufferPointer)
        /// Nothing yet.
        case nothing
        /// The peer shut down its write side.
        case end
    }

    /// Takes up to `maximum` bytes the kernel already holds, at once, before `startReading`.
    /// A server that accepts a connection from a long queue finds its first message waiting
    /// there (a client speaks right after its connect), so it can decide about the connection
    /// in the accept itself instead of a loop turn later, after the rest of the queue.
    public func readNow(atMost maximum: Int) throws(IOError) -> ReadNow {
        try requireOpen("read")
        precondition(!isReading, "readNow while libuv reads the connection")
        var descriptor: uv_os_fd_t = -1
        try check(uv_fileno(anyHandle, &descriptor), "read", address: peerDescription)
        let buffer = loop.readBuffer(ofAtLeast: maximum)
        let count = recv(descriptor, buffer.baseAddress, maximum, Int32(MSG_DONTWAIT))
        if count > 0 { return .data(UnsafeRawBufferPointer(rebasing: buffer[..<count])) }
        if count == 0 { return .end }
        let error = errno
        if error == EAGAIN || error == EWOULDBLOCK || error == EINTR { return .nothing }
        throw IOError(code: -error, operation: "read", address: peerDescription)
    }
}
