import Multiplex

extension MuxConnection {
    /// Opens a stream with `metadata` as the request, collects the peer's reply (its data until
    /// it finishes) and decodes it as JSON. The control conversations of the tunnel (node lists,
    /// enrollment, renewal, administration) are all this shape.
    public func request<Reply: Decodable>(
        _ request: some Encodable, reply: Reply.Type, _ completion: @escaping (Result<Reply, FleetFailure>) -> Void
    ) {
        let collector = ReplyCollector(connection: self) { result in
            completion(
                result.flatMap { bytes in
                    TunnelProtocol.decode(Reply.self, from: bytes).map { .success($0) }
                        ?? .failure(
                            FleetFailure("the gateway sent a reply this tunnel cannot read (is one of them older?)"))
                })
        }
        do {
            collector.stream = try openStream(
                metadata: TunnelProtocol.encode(request), interactive: false, handler: collector)
        } catch {
            completion(.failure(FleetFailure("cannot ask the gateway: \(error)")))
        }
    }

    /// Answers a request stream the peer opened: accept, the reply as JSON data, finish.
    public func reply<Reply: Encodable>(_ reply: Reply, on stream: StreamID) {
        do {
            try accept(stream, handler: DiscardingHandler(connection: self, stream: stream))
            _ = try write(TunnelProtocol.encode(reply)[...], on: stream)
            finish(stream)
        } catch {
            reset(stream, code: .cancel)
        }
    }
}

/// Collects a one-shot reply stream's bytes until the peer finishes it.
final class ReplyCollector: StreamHandler {
    private let connection: MuxConnection
    var stream: StreamID = 0
    private var bytes: [UInt8] = []
    private var completion: ((Result<[UInt8], FleetFailure>) -> Void)?
    /// Replies are small JSON documents; more is a broken or hostile peer.
    static let limit = 16 << 20

    init(connection: MuxConnection, completion: @escaping (Result<[UInt8], FleetFailure>) -> Void) {
        self.connection = connection
        self.completion = completion
    }

    func streamReceived(_ received: ArraySlice<UInt8>) {
        bytes.append(contentsOf: received)
        connection.consumed(received.count, on: stream)
        if bytes.count > Self.limit {
            connection.reset(stream, code: .cancel)
            finish(.failure(FleetFailure("the gateway's reply exceeded \(Self.limit) bytes")))
        }
    }

    func streamFinished() {
        connection.finish(stream)
        finish(.success(bytes))
    }

    func streamReset(_ failure: Failure) {
        finish(.failure(FleetFailure("the gateway refused the request: \(failure)")))
    }

    func streamWritable() {}

    private func finish(_ result: Result<[UInt8], FleetFailure>) {
        let completion = self.completion
        self.completion = nil
        completion?(result)
    }
}
