import Logging
import TunnelClient
import TunnelIO
import TunnelRuntime
import TunnelText
import TunnelWire

/// One operator command's run: a loop of its own, one connection to the gateway as an operator,
/// Ctrl-C, and the teardown of whatever the command started on it, however the run ends
/// (finished, failed, a signal, or the gateway going away). The commands drive everything
/// through it, so none of them touches a loop, a socket or a stream. Loop-confined.
public final class OperatorSession {
    let loop: EventLoop
    let client: OperatorClient
    let connection: MuxConnection
    public let logger: Logger
    private let end: SessionEnd

    private init(loop: EventLoop, client: OperatorClient, connection: MuxConnection, end: SessionEnd) {
        self.loop = loop
        self.client = client
        self.connection = connection
        self.logger = client.logger
        self.end = end
    }

    /// Connects to `endpoint`, runs `body` once the gateway accepted, and returns the exit code
    /// the session finished with (130 after Ctrl-C). A connection that fails, a gateway that goes
    /// away and a `fail` are thrown, one sentence each.
    public static func run(
        endpoint: GatewayEndpoint, logger: Logger, _ body: @escaping (OperatorSession) -> Void
    ) throws(OperatorFailure) -> Int32 {
        let loop: EventLoop
        let client: OperatorClient
        do {
            loop = try EventLoop()
            client = try OperatorClient(loop: loop, endpoint: endpoint, logger: logger)
        } catch {
            throw OperatorFailure("cannot start: \(oneLine(error))", cause: .local)
        }
        let end = SessionEnd(client: client)
        end.signals = StopSignals(loop: loop, logger: logger) { end.finish(130) }
        client.connect { result in
            switch result {
            case .success(let connection):
                client.onClosed = { reason in
                    end.fail(
                        OperatorFailure.streamEnded(reason, "the gateway closed the connection: \(reason.reason)"),
                        unlessFinished: true)
                }
                body(OperatorSession(loop: loop, client: client, connection: connection, end: end))
            case .failure(let error):
                end.fail(error)
            }
        }
        loop.run()
        if let failure = end.failure { throw failure }
        return end.exitCode ?? 1
    }

    /// Ends the run with `code`: the teardowns run, the connection says goodbye, the loop runs out.
    public func finish(_ code: Int32) {
        end.finish(code)
    }

    /// Ends the run with `failure`, which `run` throws.
    public func fail(_ failure: OperatorFailure) {
        end.fail(failure)
    }

    /// Runs `teardown` when the run ends, however it ends; the last added runs first.
    public func onFinish(_ teardown: @escaping () -> Void) {
        end.teardowns.append(teardown)
    }

    /// Whether the run has ended (a stream cut after that was cut on purpose).
    public var isFinished: Bool { end.exitCode != nil }

    // MARK: - Requests

    /// `tunnel nodes`: the gateway's list a page at a time, as each arrives (`OperatorClient`).
    public func listNodes(
        page: @escaping (NodeList) -> Void, completion: @escaping (OperatorFailure?) -> Void
    ) {
        client.listNodes(on: connection, page: page, completion: completion)
    }

    /// Sends one request and decodes its one reply.
    public func ask<Reply: Decodable>(
        _ request: OperatorRequest, reply: Reply.Type, _ completion: @escaping (Result<Reply, OperatorFailure>) -> Void
    ) {
        client.ask(request, on: connection, reply: reply, completion)
    }

    /// Runs `tick` every `milliseconds` until the run ends (a progress line, say).
    public func every(milliseconds: UInt64, _ tick: @escaping () -> Void) {
        let timer = LoopTimer(loop: loop)
        timer.start(after: milliseconds, repeat: milliseconds, tick)
        onFinish { timer.close() }
    }

    /// A `finish` for other threads (a child process's termination handler): it hops onto the loop.
    public func finishFromAnyThread() throws -> @Sendable (Int32) -> Void {
        let waker = try EventLoop.Waker(loop: loop)
        onFinish { waker.close() }
        let finish = LoopBound({ [end] (code: Int32) in end.finish(code) }, loop: loop)
        return { code in _ = waker.execute { finish.value(code) } }
    }
}

/// How a run ended, and what to undo when it does; shared by the run and its session.
private final class SessionEnd {
    let client: OperatorClient
    var exitCode: Int32?
    var failure: OperatorFailure?
    var signals: StopSignals?
    var teardowns: [() -> Void] = []

    init(client: OperatorClient) {
        self.client = client
    }

    func finish(_ code: Int32) {
        guard exitCode == nil else { return }
        exitCode = code
        for teardown in teardowns.reversed() { teardown() }
        teardowns.removeAll()
        client.close()
        signals?.close()
    }

    /// A failure after the run ended still wins over its code (a stream cut by Ctrl-C says so),
    /// except the gateway going away, which is the run's own doing then.
    func fail(_ failure: OperatorFailure, unlessFinished: Bool = false) {
        if !(unlessFinished && exitCode != nil) { self.failure = failure }
        finish(1)
    }
}
