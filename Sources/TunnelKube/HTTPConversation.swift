import TunnelHTTP

/// Follows one HTTP/1.1 connection from both ends, sans-IO: which request each response
/// answers, and when the connection leaves HTTP. The node's `kubernetes` service uses it to
/// rewrite every request head on a keep-alive connection; the gateway uses it to audit every
/// request (`docs/KUBERNETES.md`).
///
/// Requests are parsed as they come; a response is matched with the oldest request still
/// waiting. After a request that asks to upgrade (exec, attach, port-forward), the client's
/// further bytes are held, unparsed, until the server's answer: a `101` makes both directions
/// raw bytes from then on (`ClientOutput.raw`), anything else lets HTTP carry on and the held
/// bytes are parsed as the next requests. So no byte ever passes unparsed unless the server
/// agreed to leave HTTP, and a refused upgrade cannot smuggle a raw request behind it.
///
/// Loop-confined, like the connection it follows.
public final class HTTPConversation {
    /// What the client's bytes amount to, in order.
    public enum ClientOutput: Equatable, Sendable {
        /// A request's head.
        case head(HTTPHead)
        /// Some of the request's body, chunked framing removed.
        case body([UInt8])
        /// The request is complete.
        case end
        /// The connection left HTTP (the server answered 101): bytes as they are.
        case raw([UInt8])
    }

    /// What the server's bytes amount to, in order.
    public enum ServerOutput: Equatable, Sendable {
        /// A final (not 1xx) response's status, or 101, and the head of the request it answers.
        case response(status: Int, request: HTTPHead)
        /// The server agreed to an upgrade: both directions are raw from now on.
        case upgraded
    }

    /// Requests sent ahead of their responses (pipelining); kubectl sends one at a time.
    public static let maxPendingRequests = 16
    /// Client bytes held while an upgrade awaits its answer: kubectl sends none before the 101.
    public static let maxHeldBytes = 64 * 1024

    private let limits: HTTPLimits
    private var requests: HTTPParser
    private let responses: HTTPParser
    /// Requests whose final response has not begun, oldest first.
    private var waiting: [HTTPHead] = []
    /// The request whose response is being read (its head has come, its end not yet), and its status.
    private var answering: (request: HTTPHead, status: Int)?
    private var held: [UInt8] = []
    private var state = State.http

    private enum State {
        case http
        /// An upgrade request was sent; client bytes are held until its answer.
        case awaitingUpgrade
        case raw
    }

    public init(limits: HTTPLimits = HTTPLimits(maxBodyBytes: HTTPLimits.unboundedBody)) {
        self.limits = limits
        requests = HTTPParser(.request, limits: limits)
        responses = HTTPParser(.response, limits: limits)
    }

    /// Whether the connection has left HTTP.
    public var isRaw: Bool { state == .raw }

    /// Requests sent whose response has not come (the audit records them unanswered at the end).
    public var unanswered: [HTTPHead] { waiting }

    /// Parses bytes from the client. Throws on malformed HTTP, a broken limit, or too many
    /// requests ahead of their responses.
    public func fromClient(_ bytes: [UInt8]) throws(KubeProxyError) -> [ClientOutput] {
        switch state {
        case .raw:
            return bytes.isEmpty ? [] : [.raw(bytes)]
        case .awaitingUpgrade:
            guard held.count + bytes.count <= Self.maxHeldBytes else {
                throw .protocolViolation("more than \(Self.maxHeldBytes) bytes sent before the upgrade was answered")
            }
            held += bytes
            return []
        case .http:
            let events: [HTTPEvent]
            do { events = try requests.feed(bytes) } catch { throw .http(error) }
            var outputs: [ClientOutput] = []
            for event in events {
                switch event {
                case .head(let head):
                    guard waiting.count < Self.maxPendingRequests else {
                        throw .protocolViolation(
                            "more than \(Self.maxPendingRequests) requests sent ahead of their responses")
                    }
                    waiting.append(head)
                    responses.expectResponse(toMethod: head.method ?? "")
                    outputs.append(.head(head))
                case .body(let body): outputs.append(.body(body))
                case .end: outputs.append(.end)
                case .upgrade(let rest):
                    state = .awaitingUpgrade
                    held = rest
                }
            }
            return outputs
        }
    }

    /// Parses bytes from the server; also returns client output released by the answer to an
    /// upgrade (raw bytes after a 101, parsed requests after a refusal).
    public func fromServer(_ bytes: [UInt8]) throws(KubeProxyError) -> (server: [ServerOutput], client: [ClientOutput])
    {
        guard state != .raw else { return ([], []) }
        let events: [HTTPEvent]
        do { events = try responses.feed(bytes) } catch { throw .http(error) }
        var server: [ServerOutput] = []
        var client: [ClientOutput] = []
        for event in events {
            switch event {
            case .head(let head):
                let status = head.status ?? 0
                if (100..<200).contains(status), status != 101 { continue } // informational: the final answer follows
                guard !waiting.isEmpty else { throw .protocolViolation("the server sent a response to no request") }
                let request = waiting.removeFirst()
                answering = (request, status)
                server.append(.response(status: status, request: request))
            case .body:
                break
            case .end:
                let status = answering?.status
                answering = nil
                if state == .awaitingUpgrade, waiting.isEmpty, status != 101 {
                    // The upgrade was refused: HTTP goes on, starting with what was held.
                    state = .http
                    requests = HTTPParser(.request, limits: limits)
                    let pending = held
                    held = []
                    client += try fromClient(pending)
                }
            case .upgrade:
                guard state == .awaitingUpgrade, waiting.isEmpty else {
                    throw .protocolViolation("the server switched protocols without being asked to")
                }
                state = .raw
                server.append(.upgraded)
                if !held.isEmpty { client.append(.raw(held)) }
                held = []
            }
        }
        return (server, client)
    }
}
