import Testing
import TunnelHTTP

@testable import TunnelKube

/// The node's rewrite, fed real bytes through the same parser the node uses: whatever the
/// operator says about credentials or identity never reaches the API server.
@Suite struct ImpersonationRewriteTests {
    let rewrite = ImpersonationRewrite(
        user: "alice", groups: ["edge-operators", "edge-viewers"], bearerToken: "node-token")

    /// The request heads the API server would receive for `operatorBytes`, as text.
    func upstream(_ operatorBytes: String) throws -> [String] {
        let conversation = HTTPConversation()
        var heads: [String] = []
        for case .head(let head) in try conversation.fromClient(Array(operatorBytes.utf8)) {
            heads.append(String(decoding: try rewrite.encodedRewrite(head), as: UTF8.self))
        }
        return heads
    }

    func headerLines(_ head: String) -> [String] {
        Array(head.split(separator: "\r\n").dropFirst().map(String.init))
    }

    @Test func mixedCaseAndDuplicatedHeadersAreAllRemoved() throws {
        let heads = try upstream(
            "GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer stolen\r\nauthorization: Basic x\r\n"
                + "IMPERSONATE-USER: system:admin\r\nImpersonate-Group: system:masters\r\nimpersonate-group: x\r\n"
                + "Impersonate-Uid: 0\r\nImpersonate-Extra-Scopes: all\r\nX-Remote-User: root\r\nProxy-Authorization: y\r\nAccept: */*\r\n\r\n"
        )
        #expect(heads.count == 1)
        #expect(
            headerLines(heads[0]) == [
                "Host: k", "Accept: */*", "Authorization: Bearer node-token", "Impersonate-User: alice",
                "Impersonate-Group: edge-operators", "Impersonate-Group: edge-viewers",
            ])
    }

    /// An obsolete folded continuation belongs to the header above it: a forged identity header
    /// hidden in one is removed with its header or stays inert inside another header's value.
    @Test func foldedLinesCannotSmuggleAHeader() throws {
        let heads = try upstream(
            "GET /version HTTP/1.1\r\nHost: k\r\nImpersonate-User: mallory\r\n  continued\r\nX-Note: a\r\n Impersonate-User: admin\r\n\r\n"
        )
        let lines = headerLines(heads[0])
        #expect(lines.filter { $0.lowercased().hasPrefix("impersonate-user:") } == ["Impersonate-User: alice"])
        #expect(!lines.contains { $0.contains("mallory") })
        #expect(lines.allSatisfy { !$0.hasPrefix(" ") && !$0.hasPrefix("\t") })
    }

    /// Keep-alive: the second and later requests on one connection get the same rewrite.
    @Test func everyRequestOnAKeepAliveConnectionIsRewritten() throws {
        let heads = try upstream(
            "GET /api HTTP/1.1\r\nHost: k\r\n\r\n"
                + "GET /api/v1/pods HTTP/1.1\r\nHost: k\r\nImpersonate-User: system:admin\r\n\r\n"
                + "DELETE /api/v1/namespaces/default/pods/demo HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer x\r\n\r\n")
        #expect(heads.count == 3)
        for head in heads {
            #expect(headerLines(head).filter { $0.hasPrefix("Impersonate-User") } == ["Impersonate-User: alice"])
            #expect(headerLines(head).filter { $0.hasPrefix("Authorization") } == ["Authorization: Bearer node-token"])
        }
    }

    @Test func aClientCertificateNodeSendsNoAuthorization() throws {
        let rewrite = ImpersonationRewrite(user: "bob", groups: ["g"], bearerToken: nil)
        let head = HTTPHead(
            start: .request(method: "GET", target: "/api"), headers: [HTTPHeader("authorization", "Bearer x")])
        #expect(
            try rewrite.rewrite(head).headers == [
                HTTPHeader("Impersonate-User", "bob"), HTTPHeader("Impersonate-Group", "g"),
            ])
    }

    @Test func connectIsRefused() {
        let head = HTTPHead(start: .request(method: "CONNECT", target: "10.0.0.1:22"))
        #expect(throws: KubeProxyError.self) { try rewrite.rewrite(head) }
    }
}
