import Testing
import TunnelHTTP

@testable import TunnelKube

@Suite struct HTTPConversationTests {
    let upgradeRequest =
        "GET /api/v1/namespaces/default/pods/demo/exec?command=echo&command=hi HTTP/1.1\r\nHost: k\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func responsesArePairedWithTheirRequests() throws {
        let conversation = HTTPConversation()
        _ = try conversation.fromClient(
            bytes("GET /api HTTP/1.1\r\nHost: k\r\n\r\nGET /api/v1/pods HTTP/1.1\r\nHost: k\r\n\r\n"))
        let first = try conversation.fromServer(
            bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
        #expect(
            first.server.map {
                if case .response(let status, let request) = $0 { "\(status) \(request.target!)" } else { "?" }
            }
                == ["200 /api", "403 /api/v1/pods"])
        #expect(conversation.unanswered.isEmpty)
    }

    /// Bytes after an upgrade request wait for the answer: raw after a 101.
    @Test func anAcceptedUpgradeMakesBothDirectionsRaw() throws {
        let conversation = HTTPConversation()
        let out = try conversation.fromClient(bytes(upgradeRequest + "\u{82}\u{80}early"))
        #expect(out.count == 2) // head and end; the early frame is held
        let answer = try conversation.fromServer(
            bytes("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes"))
        #expect(answer.server.count == 2)
        #expect(answer.server.last == .upgraded)
        #expect(answer.client == [.raw(bytes("\u{82}\u{80}early"))])
        #expect(conversation.isRaw)
        #expect(try conversation.fromClient(bytes("GET / HTTP/1.1\r\n\r\n")) == [.raw(bytes("GET / HTTP/1.1\r\n\r\n"))])
    }

    /// A refused upgrade cannot smuggle a raw request: what followed is parsed as requests.
    @Test func aRefusedUpgradeKeepsParsing() throws {
        let conversation = HTTPConversation()
        _ = try conversation.fromClient(
            bytes(
                upgradeRequest
                    + "DELETE /api/v1/namespaces/default/pods/demo HTTP/1.1\r\nHost: k\r\nImpersonate-User: admin\r\n\r\n"
            ))
        let answer = try conversation.fromServer(bytes("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
        #expect(!conversation.isRaw)
        let heads = answer.client.compactMap { if case .head(let head) = $0 { head } else { nil } }
        #expect(heads.map(\.method) == ["DELETE"])
    }

    @Test func anUnaskedSwitchIsAViolation() throws {
        let conversation = HTTPConversation()
        _ = try conversation.fromClient(bytes("GET /api HTTP/1.1\r\nHost: k\r\n\r\n"))
        #expect(throws: KubeProxyError.self) {
            try conversation.fromServer(
                bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"))
        }
    }

    @Test func pipelinedRequestsAreBounded() throws {
        let conversation = HTTPConversation()
        let many = String(
            repeating: "GET /api HTTP/1.1\r\nHost: k\r\n\r\n", count: HTTPConversation.maxPendingRequests + 1)
        #expect(throws: KubeProxyError.self) { try conversation.fromClient(bytes(many)) }
    }

    @Test func oversizedHeadsAreRefused() throws {
        let conversation = HTTPConversation()
        let huge = "GET /api HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: HTTPLimits.defaultHeadBytes))\r\n\r\n"
        #expect(throws: KubeProxyError.self) { try conversation.fromClient(bytes(huge)) }
    }
}

@Suite struct KubeRequestTests {
    func request(_ method: String, _ target: String) -> KubeRequest? {
        KubeRequest(HTTPHead(start: .request(method: method, target: target)))
    }

    @Test func attributesAsKubernetesNamesThem() {
        #expect(
            request("GET", "/api/v1/namespaces/default/pods?limit=500")
                == KubeRequest(
                    verb: "list", path: "/api/v1/namespaces/default/pods", resource: "pods", namespace: "default"))
        #expect(request("GET", "/api/v1/pods?watch=true")?.verb == "watch")
        #expect(
            request("DELETE", "/api/v1/namespaces/default/pods/demo")
                == KubeRequest(
                    verb: "delete", path: "/api/v1/namespaces/default/pods/demo", resource: "pods",
                    namespace: "default", name: "demo"))
        #expect(
            request("GET", "/apis/apps/v1/namespaces/kube-system/deployments/coredns")
                == KubeRequest(
                    verb: "get", path: "/apis/apps/v1/namespaces/kube-system/deployments/coredns", apiGroup: "apps",
                    resource: "deployments", namespace: "kube-system", name: "coredns"))
        #expect(request("GET", "/version") == KubeRequest(verb: "get", path: "/version"))
        #expect(request("GET", "/api/v1/nodes/node-17")?.name == "node-17")
    }

    @Test func execRecordsItsCommandLine() {
        let exec = request(
            "POST", "/api/v1/namespaces/default/pods/demo/exec?command=sh&command=-c&command=echo%20a%26b&stdout=true")
        #expect(exec?.verb == "create")
        #expect(exec?.subresource == "exec")
        #expect(exec?.command == ["sh", "-c", "echo a&b"])
    }

    @Test func requestRateIsBounded() {
        var rate = RequestRate()
        let admitted = (0..<(RequestRate.burst + 10)).filter { _ in rate.admit(now: 1_000) }.count
        #expect(admitted == RequestRate.burst)
        let afterATenth = rate.admit(now: 1_100) // 100 ms later: five more
        #expect(afterATenth)
        var more = 0
        for _ in 0..<10 where rate.admit(now: 1_100) { more += 1 }
        #expect(more == 4)
    }
}
