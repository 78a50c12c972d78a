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
/// It connects by racing attempts (`DialRace`), so a gateway busy with a reconnect storm does
/// not keep an operator out for TCP's SYN retry times.
public final class OperatorClient {
    public let loop: EventLoop
    public let logger: Logger
    private let endpoint: GatewayEndpoint
    private let tlsContext: TLSContext
    /// The attempt that won the race.
    private var connection: MuxConnection?
    private var race = DialRace(raceAfter: OperatorClient.raceAfterMilliseconds, maximumAttempts: 3)
    private var raceTimer: LoopTimer?
    /// Attempts dialing, by number, and attempts in their TLS handshake.
    private var dialing: Set<Int> = []
    private var dialers: [Int: GatewayDialer] = [:]
    private var handshaking: [ObjectIdentifier: MuxConnection] = [:]
    private var lastFailure: OperatorFailure?
    private var onConnected: ((Result<MuxConnection, OperatorFailure>) -> Void)?
    /// Why the gateway refused a connection, if it said so in a GOAWAY.
    private var refusals: [ObjectIdentifier: Failure] = [:]
    private var splices: [ObjectIdentifier: SocketSplice] = [:]
    /// Told when the connection ends after it was up.
    public var onClosed: ((Failure) -> Void)?

    /// How long an attempt may go without finishing its handshake before another begins: well
    /// above a handshake on a loaded gateway in the storms measured (docs/BENCHMARKS.md), well
    /// below TCP's first SYN retry (1 s).
    static let raceAfterMilliseconds: UInt64 = 400

    public init(loop: EventLoop, endpoint: GatewayEndpoint, logger: Logger) throws {
        self.loop = loop
        self.endpoint = endpoint
        self.logger = logger
        tlsContext = try endpoint.tlsContext(applicationProtocol: TunnelProtocol.operatorALPN)
    }

    /// Connects and completes the TLS handshake; `completion` gets the connection or a sentence.
    public func connect(_ completion: @escaping (Result<MuxConnection, OperatorFailure>) -> Void) {
        onConnected = completion
        raceTimer = LoopTimer(loop: loop)
        advanceRace()
    }

    /// Does what the race says now: dial another attempt, wait, or report the last failure.
    private func advanceRace() {
        guard onConnected != nil else { return }
        switch race.next(now: loop.now) {
        case .dial:
            race.dialed(now: loop.now)
            dial(attempt: race.attempts)
            advanceRace()
        case .wait(let until):
            raceTimer?.start(after: until - loop.now) { [weak self] in self?.advanceRace() }
        case .idle:
            break
        case .fail:
            finishConnecting(.failure(lastFailure ?? OperatorFailure("cannot connect", cause: .unreachable)))
        }
    }

    private func dial(attempt: Int) {
        dialing.insert(attempt)
        let dialer = GatewayDialer(loop: loop, host: endpoint.host, port: endpoint.port, timeoutMilliseconds: 10_000) {
            [weak self] result in
            guard let self, dialing.remove(attempt) != nil else { return }
            dialers[attempt] = nil
            switch result {
            case .success(let socket): startSession(on: socket)
            case .failure(let failure):
                attemptFailed(OperatorFailure(failure.message, cause: .unreachable), final: false)
            }
        }
        // A dialer that failed at once (a bad address) has reported already.
        if dialing.contains(attempt) { dialers[attempt] = dialer }
    }

    private func startSession(on socket: StreamConnection) {
        try? socket.setNoDelay(true)
        do {
            let attempt = try MuxConnection.makeClient(
                on: socket, context: tlsContext, serverName: endpoint.serverName, delegate: self, logger: logger)
            handshaking[ObjectIdentifier(attempt)] = attempt
            attempt.start()
        } catch {
            attemptFailed(OperatorFailure("cannot start TLS: \(error)", cause: .local), final: true)
        }
    }

    private func attemptFailed(_ failure: OperatorFailure, final: Bool) {
        lastFailure = failure
        if race.failed(final: final) {
            finishConnecting(.failure(failure))
        } else {
            advanceRace()
        }
    }

    /// Reports the race's result once; the attempts still running are closed.
    private func finishConnecting(_ result: Result<MuxConnection, OperatorFailure>) {
        let completion = onConnected
        stopRace()
        completion?(result)
    }

    /// No more attempts, no report: those under way are cancelled or closed.
    private func stopRace() {
        onConnected = nil
        for dialer in dialers.values { dialer.cancel() }
        dialers.removeAll()
        dialing.removeAll()
        let losers = handshaking.values
        handshaking.removeAll()
        for loser in losers { loser.abort(Failure(.noError, "another connection won")) }
        raceTimer?.close()
        raceTimer = nil
    }

    /// Says goodbye (GOAWAY, TLS close_notify) and closes once that is written. It waits one
    /// turn of the loop: the callback that led here (a stream finishing both ways, say) has
    /// queued that stream's last frame, its FIN, which is written at the end of the callback;
    /// aborting before that would drop it, and the stream would end as reset, not closed, in
    /// the gateway's audit log. A connect still racing stops, without a report.
    public func close() {
        stopRace()
        guard let connection else { return }
        let nextTurn = LoopTimer(loop: loop)
        nextTurn.start(after: 0) { [weak connection] in
            nextTurn.close()
            connection?.abort(Failure(.noError, "operator done"))
        }
    }

    // MARK: - Requests

    /// `tunnel nodes`: the gateway's list of known nodes, a page at a time. `page` gets each
    /// page as it arrives (the first carries the gateway's warnings and time). One request asks
    /// for up to `NodeList.maximumPagesPerReply` pages; where its reply ends, the next request
    /// is made at once. `completion` ends it: nil after the last page, or the failure.
    public func listNodes(
        on connection: MuxConnection, pageSize: Int = NodeList.maximumPage, after: String? = nil,
        page: @escaping (NodeList) -> Void, completion: @escaping (OperatorFailure?) -> Void
    ) {
        let reader = NodeListReader(connection: connection, page: page) { [weak self] result in
            switch result {
            case .failure(let failure): completion(failure)
            case .success(let next):
                // A cursor that does not move on would ask for the same pages forever.
                guard let next, let self, next > (after ?? "") else { return completion(nil) }
                listNodes(on: connection, pageSize: pageSize, after: next, page: page, completion: completion)
            }
        }
        do {
            let request = OperatorRequest.listNodes(
                after: after, limit: pageSize, pages: NodeList.maximumPagesPerReply)
            reader.stream = try connection.openStream(
                metadata: TunnelProtocol.encode(request), interactive: false, handler: reader)
        } catch {
            completion(OperatorFailure("cannot ask the gateway: \(error)", cause: .local))
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
        guard handshaking.removeValue(forKey: ObjectIdentifier(connection)) != nil, race.ready() else {
            connection.abort(Failure(.noError, "another connection won"))
            return
        }
        self.connection = connection
        finishConnecting(.success(connection))
    }

    public func connection(
        _ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool
    ) {
        connection.reset(stream, code: .refusedStream)
    }

    public func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        if failure.code != .noError { refusals[ObjectIdentifier(connection)] = failure }
    }

    public func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let id = ObjectIdentifier(connection)
        let reason = refusals.removeValue(forKey: id) ?? failure
        if connection === self.connection {
            onClosed?(reason)
            return
        }
        guard handshaking.removeValue(forKey: id) != nil else { return }
        // A GOAWAY with a tunnel code is a refusal (revoked, wrong role) and a TLS alert a failed
        // handshake: both are the gateway's answer. A close without a word is admission at the
        // door during a storm, worth another attempt.
        let said = reason.code.isApplicationCode || connection.tlsFailure != nil
        let cause: OperatorFailure.Cause = reason.code.isApplicationCode ? .refused(reason.code) : .handshake
        attemptFailed(
            OperatorFailure("the gateway refused the connection: \(reason.reason)", cause: cause), final: said)
    }
}
