import Multiplex
import TunnelIO
import TunnelRuntime

/// The node list as one reply of several pages (`OperatorRequest.listNodes(pages:)`), so a long
/// list costs an operator one request instead of one round trip per page, each of which waits
/// for a turn of the gateway's loop (a quarter of a second in a reconnect storm). Pages go out
/// one at a time: the next is read and encoded once the last left the stream's send buffer, and
/// never in the same loop turn, so a turn encodes one page at most and the reply holds one
/// page's bytes at a time.
final class NodeListReply: StreamHandler {
    private unowned let gateway: Gateway
    private let connection: MuxConnection
    private let stream: StreamID
    private let roles: [String]?
    private let limit: Int?
    /// Where the next page starts; nil before the first.
    private var after: String?
    private var pagesLeft: Int
    /// Takes the next page in the next turn when the last went into the send buffer at once.
    private let nextTurn: LoopTimer
    private var ended = false

    private init(
        _ gateway: Gateway, connection: MuxConnection, stream: StreamID, roles: [String]?, after: String?,
        limit: Int?, pages: Int
    ) {
        self.gateway = gateway
        self.connection = connection
        self.stream = stream
        self.roles = roles
        self.after = after
        self.limit = limit
        pagesLeft = min(max(pages, 1), NodeList.maximumPagesPerReply)
        nextTurn = LoopTimer(loop: gateway.loop)
    }

    /// Accepts the request's stream and sends the first page now.
    static func start(
        _ gateway: Gateway, connection: MuxConnection, stream: StreamID, roles: [String]?, after: String?,
        limit: Int?, pages: Int
    ) {
        let reply = NodeListReply(
            gateway, connection: connection, stream: stream, roles: roles, after: after, limit: limit, pages: pages)
        do {
            try connection.accept(stream, handler: reply)
        } catch {
            reply.end()
            connection.reset(stream, code: .cancel)
            return
        }
        reply.sendPage()
    }

    deinit { nextTurn.close() }

    private func sendPage() {
        guard !ended else { return }
        let (nodes, next) = gateway.nodePage(visibleToRoles: roles, after: after, limit: limit)
        // The gateway's warnings go with the list's first page, as with one page per request.
        let page = NodeList(
            nodes: nodes, warnings: after == nil ? gateway.warnings : [], gatewayTime: gateway.authority.now,
            next: next)
        after = next
        pagesLeft -= 1
        do {
            let roomForMore = try connection.write((TunnelProtocol.encode(page) + [0x0A])[...], on: stream)
            guard next != nil, pagesLeft > 0 else {
                connection.finish(stream)
                return end()
            }
            if roomForMore { nextTurn.start(after: 0) { [weak self] in self?.sendPage() } }
        } catch {
            connection.reset(stream, code: .cancel)
            end()
        }
    }

    private func end() {
        ended = true
        nextTurn.close()
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) { connection.consumed(bytes.count, on: stream) }
    func streamFinished() {}
    func streamReset(_ failure: Failure) { end() }
    /// The last page left the send buffer: the next one goes.
    func streamWritable() { sendPage() }
}
