import Logging
import Multiplex
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelTLS

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Why an operator command could not do what it was asked; `message` is meant for the operator.
public struct OperatorFailure: Error, CustomStringConvertible {
    /// Where the failure came from, so the CLI can give it a stable code and fix without
    /// reading the sentence.
    public enum Cause: Sendable, Equatable {
        /// No TCP connection to the gateway.
        case unreachable
        /// The TLS handshake failed: most often the gateway's certificate is not signed by the pinned CA.
        case handshake
        /// The gateway (or the node through it) refused with this tunnel wire code (`docs/TUNNEL.md` §4).
        case refused(ErrorCode)
        /// The connection or stream ended without a tunnel code (a reset, a lost connection).
        case ended
        /// Something on this machine (a descriptor, stdin) failed.
        case local
    }

    public var message: String
    public var cause: Cause
    public init(_ message: String, cause: Cause) {
        self.message = message
        self.cause = cause
    }
    public var description: String { message }

    /// A stream's end: a tunnel code is a refusal, anything else the stream just ended.
    public static func streamEnded(_ failure: Failure, _ message: String) -> OperatorFailure {
        OperatorFailure(message, cause: failure.code.isApplicationCode ? .refused(failure.code) : .ended)
    }
}

/// The operator's side: one connection to the gateway with an operator certificate, and the
/// requests `tunnel nodes`, `tunnel proxy` and `tunnel forward` make over it. Loop-confined.
public final class OperatorClient {
    public let loop: EventLoop
    public let logger: Logger
    private let endpoint: GatewayEndpoint
    private let tlsContext: TLSContext
    private var connection: MuxConnection?
    private var dialer: GatewayDialer?
    private var onConnected: ((Result<MuxConnection, OperatorFailure>) -> Void)?
    /// Why the gateway refused us, if it said so in a GOAWAY.
    private var refusal: Failure?
    private var splices: [ObjectIdentifier: SocketSplice] = [:]
    /// Told when the connection ends after it was up.
    public var onClosed: ((Failure) -> Void)?

    public init(loop: EventLoop, endpoint: GatewayEndpoint, logger: Logger) throws {
        self.loop = loop
        self.endpoint = endpoint
        self.logger = logger
        tlsContext = try endpoint.tlsContext(applicationProtocol: TunnelProtocol.operatorALPN)
    }

    /// Connects and completes the TLS handshake; `completion` gets the connection or a sentence.
    public func connect(_ completion: @escaping (Result<MuxConnection, OperatorFailure>) -> Void) {
        onConnected = completion
        dialer = GatewayDialer(loop: loop, host: endpoint.host, port: endpoint.port, timeoutMilliseconds: 10_000) {
            [weak self] result in
            guard let self else { return }
            dialer = nil
            switch result {
            case .success(let socket): startSession(on: socket)
            case .failure(let failure):
                finishConnecting(.failure(OperatorFailure(failure.message, cause: .unreachable)))
            }
        }
    }

    private func startSession(on socket: StreamConnection) {
        try? socket.setNoDelay(true)
        do {
            connection = try MuxConnection.makeClient(
                on: socket, context: tlsContext, serverName: endpoint.serverName, delegate: self, logger: logger)
            connection?.start()
        } catch {
            finishConnecting(.failure(OperatorFailure("cannot start TLS: \(error)", cause: .local)))
        }
    }

    private func finishConnecting(_ result: Result<MuxConnection, OperatorFailure>) {
        let completion = onConnected
        onConnected = nil
        completion?(result)
    }

    /// Says goodbye (GOAWAY, TLS close_notify) and closes once that is written. It waits one
    /// turn of the loop: the callback that led here (a stream finishing both ways, say) has
    /// queued that stream's last frame, its FIN, which is written at the end of the callback;
    /// aborting before that would drop it, and the stream would end as reset, not closed, in
    /// the gateway's audit log.
    public func close() {
        guard let connection else { return }
        let nextTurn = LoopTimer(loop: loop)
        nextTurn.start(after: 0) { [weak connection] in
            nextTurn.close()
            connection?.abort(Failure(.noError, "operator done"))
        }
    }

    // MARK: - Requests

    /// `tunnel nodes`: the gateway's list of known nodes, a page at a time. `page` gets each
    /// page as it arrives (the first carries the gateway's warnings and time); the next is asked
    /// for at once. `completion` ends it: nil after the last page, or the failure.
    public func listNodes(
        on connection: MuxConnection, pageSize: Int = NodeList.maximumPage, after: String? = nil,
        page: @escaping (NodeList) -> Void, completion: @escaping (OperatorFailure?) -> Void
    ) {
        ask(.listNodes(after: after, limit: pageSize), on: connection, reply: NodeList.self) { [weak self] result in
            switch result {
            case .failure(let failure): completion(failure)
            case .success(let list):
                page(list)
                // A cursor that does not move on would ask for the same page forever.
                guard let next = list.next, let self, next > (after ?? "") else { return completion(nil) }
                listNodes(on: connection, pageSize: pageSize, after: next, page: page, completion: completion)
            }
        }
    }

    /// The whole list, from its pages: for callers that need every node before they go on.
    public func listNodes(
        on connection: MuxConnection, _ completion: @escaping (Result<NodeList, OperatorFailure>) -> Void
    ) {
        var whole: NodeList?
        listNodes(on: connection) { list in
            if whole == nil { whole = list } else { whole?.nodes += list.nodes }
        } completion: { failure in
            if let failure { return completion(.failure(failure)) }
            whole?.next = nil
            completion(.success(whole ?? NodeList(nodes: [], warnings: [])))
        }
    }

    /// Sends one request and decodes its one reply.
    public func ask<Reply: Decodable>(
        _ request: OperatorRequest, on connection: MuxConnection, reply: Reply.Type,
        _ completion: @escaping (Result<Reply, OperatorFailure>) -> Void
    ) {
        connection.request(request, reply: reply) { result in
            completion(result.mapError { OperatorFailure($0.message, cause: .ended) })
        }
    }

    /// Opens a stream to `service` on `node` and splices it to `input`/`output` once the node
    /// accepted. `completion` runs once: nil when both directions finished, or a sentence.
    public func splice(
        on connection: MuxConnection, node: String, service: String, parameters: [String: String]? = nil,
        interactive: Bool,
        input: StreamConnection, output: StreamConnection, completion: @escaping (OperatorFailure?) -> Void
    ) {
        var spliceKey: ObjectIdentifier?
        var refusal: StreamRefusal?
        // Weak: `close` ends the connection a loop turn later, when the client may be gone.
        let splice = SocketSplice(
            connection: connection, stream: 0, input: input, output: output, startWhenAccepted: true
        ) { [weak self] failure in
            if let spliceKey, let removed = self?.splices.removeValue(forKey: spliceKey) { refusal = removed.refusal }
            completion(
                failure.map { failure in
                    if let refusal { return .streamEnded(failure, refusal.message) }
                    return .streamEnded(
                        failure,
                        failure.code.isApplicationCode || failure.code == .refusedStream
                            ? TunnelErrorCode.explain(failure, node: node, service: service)
                            : "stream to \(service) on \(node) ended: \(failure.reason)")
                })
        }
        spliceKey = ObjectIdentifier(splice)
        splices[ObjectIdentifier(splice)] = splice
        do {
            let request = OperatorRequest.connect(node: node, service: service, parameters: parameters)
            splice.stream = try connection.openStream(
                metadata: TunnelProtocol.encode(request), interactive: interactive, handler: splice)
        } catch {
            splices[ObjectIdentifier(splice)] = nil
            input.close()
            output.close()
            completion(OperatorFailure("cannot open a stream: \(error)", cause: .ended))
        }
    }
}

extension OperatorClient: MuxConnectionDelegate {
    public func connectionEstablished(_ connection: MuxConnection) -> Failure? {
        nil
    }

    /// Only now has the gateway accepted our certificate; a refusal would have come as a TLS
    /// alert or a GOAWAY instead of its HELLO.
    public func connectionReady(_ connection: MuxConnection) {
        finishConnecting(.success(connection))
    }

    public func connection(
        _ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        connection.reset(stream, code: .refusedStream)
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        if failure.code != .noError { refusal = failure }
    }

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let reason = refusal ?? failure
        if onConnected != nil {
            // A GOAWAY with a tunnel code is a refusal (revoked, wrong role); without one, the handshake failed.
            let cause: OperatorFailure.Cause = reason.code.isApplicationCode ? .refused(reason.code) : .handshake
            finishConnecting(
                .failure(OperatorFailure("the gateway refused the connection: \(reason.reason)", cause: cause)))
        } else {
            onClosed?(reason)
        }
    }
}
