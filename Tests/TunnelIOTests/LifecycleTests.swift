import Testing
import TunnelIO

/// Edge cases of the ownership rules: what happens to work in flight at close.
@Suite struct LifecycleTests {
    @Test func closeCancelsQueuedWritesAndLaterWritesThrow() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        var accepted: StreamConnection?
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            // Accept but never read, so the writer's queue cannot drain.
            if case .success(let server) = result { accepted = server }
        }
        let payload = patternBytes(count: 1024 * 1024, seed: 3)
        var results: [String] = []
        let client = try StreamConnection.connect(loop: loop, to: listener.localAddress) { _ in }
        let closer = LoopTimer(loop: loop)
        closer.start(after: 1, repeat: 1) {
            guard let server = accepted, client.writeQueueSize > 0 else { return }
            closer.close()
            client.close {
                #expect(throws: IOError.self) { try client.write(payload) }
                server.close()
                listener.close()
                harness.finish()
            }
        }
        for _ in 0..<32 {
            try client.write(payload) { error in results.append(error?.name ?? "ok") }
        }
        harness.run()
        #expect(results.count == 32, "every accepted write completes exactly once")
        #expect(results.contains("ECANCELED"))
        #expect(results.allSatisfy { $0 == "ok" || $0 == "ECANCELED" })
    }

    @Test func listenerReportsAddressInUseAtOnce() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        let first = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { _ in }
        #expect {
            try TCPListener(loop: loop, address: first.localAddress) { _ in }
        } throws: { error in
            (error as? IOError)?.name == "EADDRINUSE" && "\(error)".contains(first.localAddress.description)
        }
        first.close()
        harness.finish()
        harness.run()
    }

    @Test func wakerClosedOnTheLoopStillRunsQueuedWork() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        let waker = try EventLoop.Waker(loop: loop)
        let ran = LoopBound(0, loop: loop)
        for _ in 0..<3 {
            #expect(waker.execute { ran.value += 1 })
        }
        waker.close()
        #expect(!waker.execute { ran.value += 100 })
        harness.finish()
        harness.run()
        #expect(ran.value == 3)
    }

    @Test func cancelledResolveNeverCompletes() throws {
        let harness = try LoopHarness()
        let resolver = try Resolver.resolve("localhost:7443", loop: harness.loop) { _ in
            Issue.record("completion ran after cancel")
        }
        resolver.cancel()
        harness.finish()
        harness.run()
    }
}
