import Multiplex
import TunnelRuntime

/// Reads the reply to `OperatorRequest.listNodes(pages:)`: node list pages, each a JSON
/// document ended by a newline, handed on one at a time as each is complete. A gateway older
/// than `pages` sends one document and no newline, which the end of the stream completes.
/// Bounded: a line of at most `lineLimit` bytes, at most `NodeList.maximumPagesPerReply` pages.
final class NodeListReader: StreamHandler {
    private let connection: MuxConnection
    var stream: StreamID = 0
    private var buffered: [UInt8] = []
    /// Bytes of `buffered` already searched for a newline.
    private var searched = 0
    private var pages = 0
    /// Where the next request starts: the last page's `next`.
    private var next: String?
    private let onPage: (NodeList) -> Void
    private var completion: ((Result<String?, OperatorFailure>) -> Void)?
    /// A page of `NodeList.maximumPage` nodes is a few hundred KiB; more is a broken peer.
    static let lineLimit = 16 << 20

    /// `completion` gets where a following request starts (nil after the list's last page).
    init(
        connection: MuxConnection, page: @escaping (NodeList) -> Void,
        completion: @escaping (Result<String?, OperatorFailure>) -> Void
    ) {
        self.connection = connection
        self.onPage = page
        self.completion = completion
    }

    func streamReceived(_ received: ArraySlice<UInt8>) {
        buffered.append(contentsOf: received)
        connection.consumed(received.count, on: stream)
        while let newline = buffered[searched...].firstIndex(of: 0x0A) {
            guard deliver(buffered[..<newline]) else { return }
            buffered.removeSubrange(...newline)
            searched = 0
        }
        searched = buffered.count
        if buffered.count > Self.lineLimit {
            fail("the gateway's node list page exceeded \(Self.lineLimit) bytes")
        }
    }

    func streamFinished() {
        connection.finish(stream)
        if !buffered.isEmpty {
            guard deliver(buffered[...]) else { return }
        }
        end(.success(next))
    }

    func streamReset(_ failure: Failure) {
        end(.failure(OperatorFailure("the gateway refused the request: \(failure)", cause: .ended)))
    }

    func streamWritable() {}

    /// One page in: handed on, or the reply fails (unreadable, or one page too many).
    private func deliver(_ line: ArraySlice<UInt8>) -> Bool {
        guard completion != nil else { return false }
        pages += 1
        guard pages <= NodeList.maximumPagesPerReply else {
            fail("the gateway sent more than \(NodeList.maximumPagesPerReply) node list pages in one reply")
            return false
        }
        guard let page = TunnelProtocol.decode(NodeList.self, from: Array(line)) else {
            fail("the gateway sent a node list this tunnel cannot read (is one of them older?)")
            return false
        }
        next = page.next
        onPage(page)
        return true
    }

    private func fail(_ message: String) {
        connection.reset(stream, code: .cancel)
        end(.failure(OperatorFailure(message, cause: .ended)))
    }

    private func end(_ result: Result<String?, OperatorFailure>) {
        let completion = self.completion
        self.completion = nil
        completion?(result)
    }
}
