import Testing
import TunnelHTTP

/// Feeds `text` in one piece, or one byte at a time, and merges adjacent body pieces so the two
/// can be compared (a body's piece boundaries carry no meaning).
func parse(
    _ kind: HTTPParser.Kind, _ text: String, bytewise: Bool = false, limits: HTTPLimits = HTTPLimits(),
    setup: (HTTPParser) -> Void = { _ in }
) throws(HTTPError) -> [HTTPEvent] {
    let parser = HTTPParser(kind, limits: limits)
    setup(parser)
    let bytes = Array(text.utf8)
    var events: [HTTPEvent] = []
    if bytewise {
        var index = 0
        while index < bytes.count {
            let produced = try parser.feed([bytes[index]])
            index += 1
            events += produced
            if case .upgrade(let rest)? = produced.last {
                events[events.count - 1] = .upgrade(rest: rest + bytes[index...])
                return merged(events)
            }
        }
    } else {
        events = try parser.feed(bytes)
    }
    if case .upgrade? = events.last { return merged(events) }
    return merged(events + (try parser.finish()))
}

func merged(_ events: [HTTPEvent]) -> [HTTPEvent] {
    var out: [HTTPEvent] = []
    for event in events {
        if case .body(let more) = event, case .body(let earlier)? = out.last {
            out[out.count - 1] = .body(earlier + more)
        } else {
            out.append(event)
        }
    }
    return out
}

func body(_ text: String) -> HTTPEvent { .body(Array(text.utf8)) }

@Suite struct HTTPParserTests {
    @Test(arguments: [false, true]) func requestHeadKeepsOrderCaseAndDuplicates(bytewise: Bool) throws {
        let events = try parse(
            .request, "GET /sessions?node=a%20b HTTP/1.1\r\nHost: x\r\nX-Dup: 1\r\nx-dup: 2\r\nCookie: a=b\r\n\r\n",
            bytewise: bytewise)
        #expect(events.count == 2)
        guard case .head(let head) = events[0] else {
            Issue.record("no head")
            return
        }
        #expect(head.method == "GET")
        #expect(head.target == "/sessions?node=a%20b")
        #expect(head.version == .http11)
        #expect(
            head.headers == [
                HTTPHeader("Host", "x"), HTTPHeader("X-Dup", "1"), HTTPHeader("x-dup", "2"),
                HTTPHeader("Cookie", "a=b"),
            ])
        #expect(head.values("x-DUP") == ["1", "2"])
        #expect(head.keepAlive)
        #expect(!head.upgrade)
        #expect(events[1] == .end)
    }

    @Test(arguments: [false, true]) func chunkedBodyArrivesWithoutFraming(bytewise: Bool) throws {
        let text =
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: t\r\n\r\n"
        let events = try parse(.request, text, bytewise: bytewise)
        #expect(events.dropFirst() == [body("hello, world"), .end])
    }

    @Test(arguments: [false, true]) func pipelinedRequestsComeOutInOrder(bytewise: Bool) throws {
        let text =
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n"
        let events = try parse(.request, text, bytewise: bytewise)
        let targets = events.compactMap { event -> String? in
            if case .head(let head) = event { head.target } else { nil }
        }
        #expect(targets == ["/a", "/b", "/c"])
        #expect(events.filter { $0 == .end }.count == 3)
        #expect(events.contains(body("abc")))
        guard case .head(let last) = events[events.count - 2] else {
            Issue.record("no head")
            return
        }
        #expect(!last.keepAlive, "HTTP/1.0 without keep-alive closes")
    }

    @Test func everySplitPointGivesTheSameEvents() throws {
        let text =
            "PUT /p HTTP/1.1\r\nA: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /q HTTP/1.1\r\nB: 2\r\n\r\n"
        let whole = try parse(.request, text)
        let bytes = Array(text.utf8)
        for split in 1..<bytes.count {
            let parser = HTTPParser(.request)
            let events = try parser.feed(Array(bytes[..<split])) + parser.feed(Array(bytes[split...])) + parser.finish()
            #expect(merged(events) == whole, "split at \(split)")
        }
    }

    @Test func responsesWithStatusReasonAndBodyToClose() throws {
        let events = try parse(
            .response, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnoHTTP/1.0 200 OK\r\n\r\nuntil close")
        #expect(events.count == 6)
        guard case .head(let first) = events[0], case .head(let second) = events[3] else {
            Issue.record("no heads")
            return
        }
        #expect(first.status == 404 && first.start == .response(status: 404, reason: "Not Found"))
        #expect(second.status == 200 && !second.keepAlive)
        #expect(Array(events[4...]) == [body("until close"), .end])
    }

    @Test func responseToHEADHasNoBody() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        let events = try parse(.response, text) {
            $0.expectResponse(toMethod: "HEAD")
            $0.expectResponse(toMethod: "GET")
        }
        #expect(events.count == 4)
        #expect(events[1] == .end && events[3] == .end)
    }

    @Test(arguments: [false, true]) func upgradeRequestHandsOverTheFollowingBytes(bytewise: Bool) throws {
        let text = "GET /exec HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n\u{0}\u{1}frames"
        let events = try parse(.request, text, bytewise: bytewise)
        guard case .head(let head) = events.first else {
            Issue.record("no head")
            return
        }
        #expect(head.upgrade)
        #expect(events.last == .upgrade(rest: [0, 1] + Array("frames".utf8)))
    }

    @Test func switchingProtocolsResponseIsAnUpgradeAndLaterInputIsRefused() throws {
        let parser = HTTPParser(.response)
        let events = try parser.feed(
            Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxy".utf8))
        guard case .head(let head) = events.first else {
            Issue.record("no head")
            return
        }
        #expect(head.status == 101 && head.upgrade)
        #expect(events.last == .upgrade(rest: Array("xy".utf8)))
        #expect(throws: HTTPError.closed) { try parser.feed([1]) }
    }

    @Test func limitsRefuseLargeHeadsManyHeadersAndLargeBodies() throws {
        let small = HTTPLimits(maxHeadBytes: 64, maxHeaderCount: 3, maxBodyBytes: 4)
        #expect(throws: HTTPError.headTooLarge(limit: 64)) {
            try parse(.request, "GET /\(String(repeating: "a", count: 80)) HTTP/1.1\r\n\r\n", limits: small)
        }
        #expect(throws: HTTPError.tooManyHeaders(limit: 3)) {
            try parse(.request, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", bytewise: true, limits: small)
        }
        #expect(throws: Never.self) {
            try parse(.request, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: small)
        }
        #expect(throws: HTTPError.bodyTooLarge(limit: 4)) {
            try parse(.request, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", limits: small)
        }
        #expect(throws: HTTPError.bodyTooLarge(limit: 4)) {
            try parse(
                .request, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
                limits: small)
        }
        #expect(HTTPError.tooManyHeaders(limit: 3).responseStatus == 431)
    }

    @Test func malformedInputTruncationAndNonUTF8AreClearErrors() throws {
        let parser = HTTPParser(.request)
        #expect { try parser.feed(Array("BREW /pot HTTP/1.1\r\n\r\n".utf8)) } throws: { error in
            guard case HTTPError.malformed(let name, _) = error else { return false }
            return name == "HPE_INVALID_METHOD"
        }
        #expect(throws: HTTPError.closed) { try parser.feed([65]) }
        #expect(throws: HTTPError.truncated) { try parse(.request, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab") }
        #expect(throws: HTTPError.notUTF8(field: "value of X")) {
            try HTTPParser(.request).feed(Array("GET / HTTP/1.1\r\nX: ".utf8) + [0xFF] + Array("\r\n\r\n".utf8))
        }
    }

    @Test func encodedHeadsRoundTripAndRefuseInjection() throws {
        let head = HTTPHead(
            start: .request(method: "GET", target: "/api/v1/pods"),
            headers: [
                HTTPHeader("Host", "k"), HTTPHeader("Impersonate-Group", "a"), HTTPHeader("Impersonate-Group", "b"),
            ])
        let events = try parse(.request, String(decoding: try head.encoded(), as: UTF8.self))
        guard case .head(let parsed) = events.first else {
            Issue.record("no head")
            return
        }
        #expect(parsed.headers == head.headers && parsed.start == head.start)
        var injected = head
        injected.headers.append(HTTPHeader("X", "a\r\nSet-Cookie: s=1"))
        #expect(throws: HTTPError.unencodable(field: "value of X")) { try injected.encoded() }
        let response = HTTPHead(start: .response(status: 200, reason: "OK\r\nX: y"))
        #expect(throws: HTTPError.unencodable(field: "reason phrase")) { try response.encoded() }
        var removed = head
        removed.remove("impersonate-group")
        #expect(removed.headers == [HTTPHeader("Host", "k")])
    }

    @Test func completeMessagesBeforeBadBytesAreReturnedAndTheErrorComesNext() throws {
        let parser = HTTPParser(.request)
        let events = try parser.feed(
            Array("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nBREW /c HTTP/1.1\r\n\r\n".utf8))
        #expect(events.filter { $0 == .end }.count == 2)
        guard case .malformed(let name, _)? = parser.failure else {
            Issue.record("no failure")
            return
        }
        #expect(name == "HPE_INVALID_METHOD")
        #expect(throws: parser.failure!) { try parser.feed([65]) }
        #expect(throws: HTTPError.closed) { try parser.feed([65]) }

        let limited = HTTPParser(.request, limits: HTTPLimits(maxBodyBytes: 4))
        let before = try limited.feed(
            Array(
                "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET /c HTTP/1.1\r\n\r\n".utf8)
        )
        #expect(
            before.compactMap { if case .head(let head) = $0 { head.target } else { nil } } == ["/a"],
            "parsing stops at the refused head")
        #expect(limited.failure == .bodyTooLarge(limit: 4))
    }
}
