import TunnelIO

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The local admin socket's wire format: one `AdminRequest` as a JSON line, answered by one
/// `AdminReply` as a JSON line, then the gateway closes. Who may ask is decided by the socket's
/// file mode (0600, in a 0700 directory) and the peer's uid.
public enum AdminChannel {
    /// A request line longer than this is refused (a CSR is about 600 bytes).
    public static let maximumLineBytes = 64 * 1024

    /// Accumulates bytes until the first newline; nil until then, or on overflow.
    public struct LineReader {
        private var buffer: [UInt8] = []
        public private(set) var overflowed = false

        public init() {}

        public mutating func append(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
            buffer.append(contentsOf: bytes)
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                return Array(buffer[..<newline])
            }
            if buffer.count > maximumLineBytes { overflowed = true }
            return nil
        }

        /// At end of input: what came without a newline.
        public var remainder: [UInt8]? { buffer.isEmpty ? nil : buffer }
    }

    /// Sends `request` to the admin socket at `path` and calls `completion` with the reply, on `loop`.
    public static func send(
        _ request: AdminRequest, to path: String, loop: EventLoop,
        completion: @escaping (Result<AdminReply, FleetFailure>) -> Void
    ) {
        var finished = false
        func finish(_ result: Result<AdminReply, FleetFailure>) {
            guard !finished else { return }
            finished = true
            completion(result)
        }
        var reader = LineReader()
        var socket: StreamConnection?
        do {
            socket = try StreamConnection.connect(loop: loop, unixPath: path, timeoutMilliseconds: 5_000) { result in
                guard let connection = socket else { return }
                if case .failure(let error) = result {
                    connection.close()
                    return finish(
                        .failure(
                            FleetFailure(
                                "\(error); run this on the gateway host as root, or as an admin operator without --admin-socket"
                            )))
                }
                do {
                    try connection.write(TunnelProtocol.encode(request) + [UInt8(ascii: "\n")])
                    try connection.startReading { event in
                        switch event {
                        case .data(let bytes):
                            guard let line = reader.append(bytes) else { return }
                            connection.close()
                            finish(
                                TunnelProtocol.decode(AdminReply.self, from: line).map { .success($0) }
                                    ?? .failure(FleetFailure("the gateway's admin socket sent an unreadable reply")))
                        case .end, .error:
                            connection.close()
                            finish(.failure(FleetFailure("the gateway closed the admin socket without a reply")))
                        }
                    }
                } catch {
                    connection.close()
                    finish(.failure(FleetFailure("admin socket \(path): \(error)")))
                }
            }
        } catch {
            finish(.failure(FleetFailure("cannot connect to the admin socket \(path): \(error)")))
        }
    }
}
