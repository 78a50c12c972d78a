import Testing
import TunnelIO

@Suite struct ResolverTests {
    @Test func parsesHostPortForms() throws {
        #expect(try Resolver.parse("gateway.example:7443") == ("gateway.example", 7443))
        #expect(try Resolver.parse("10.0.0.5:0") == ("10.0.0.5", 0))
        #expect(try Resolver.parse("[::1]:7443") == ("::1", 7443))
        #expect(try Resolver.parse("[fe80::1%eth0]:22") == ("fe80::1%eth0", 22))
    }

    @Test(arguments: [
        ("nonsense", "expected host:port"),
        ("::1:7443", "needs brackets"),
        ("[::1]7443", "expected ':port'"),
        ("[::1:7443", "missing ']'"),
        (":7443", "host is empty"),
        ("host:", "port must be a number"),
        ("host:65536", "port must be a number"),
        ("host:+80", "port must be a number"),
    ])
    func rejectsMalformedInputNamingIt(input: String, reason: String) {
        #expect {
            try Resolver.parse(input)
        } throws: { error in
            let text = "\(error)"
            return text.contains("\"\(input)\"") && text.contains(reason)
        }
    }

    @Test func resolvesLocalhostAndBracketedIPv6() throws {
        let harness = try LoopHarness()
        var localhost: Result<[SocketAddress], IOError>?
        var loopback6: Result<[SocketAddress], IOError>?
        func finishWhenBothDone() {
            if localhost != nil && loopback6 != nil { harness.finish() }
        }
        try Resolver.resolve("localhost:0", loop: harness.loop) { result in
            localhost = result
            finishWhenBothDone()
        }
        try Resolver.resolve("[::1]:80", loop: harness.loop) { result in
            loopback6 = result
            finishWhenBothDone()
        }
        harness.run()
        let local = try #require(try localhost?.get())
        #expect(!local.isEmpty)
        #expect(local.allSatisfy { $0.port == 0 && ($0.description == "127.0.0.1:0" || $0.description == "[::1]:0") })
        #expect(try loopback6?.get().map(\.description) == ["[::1]:80"])
    }

    @Test func rejectsNonsenseBeforeResolving() throws {
        let loop = try EventLoop()
        #expect {
            try Resolver.resolve("nonsense", loop: loop) { _ in Issue.record("completion must not run") }
        } throws: { error in
            "\(error)".contains("\"nonsense\"")
        }
        #expect(loop.close())
    }
}
