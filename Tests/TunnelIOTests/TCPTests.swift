import Testing
import TunnelIO

@Suite struct TCPTests {
    @Test(arguments: ["127.0.0.1", "::1"])
    func echoesSixteenMebibytes(host: String) throws {
        let harness = try LoopHarness(timeoutMilliseconds: 60_000)
        let loop = harness.loop
        let total = 16 * 1024 * 1024
        let chunk = 256 * 1024
        var sent = FNV1a()
        var received = FNV1a()
        var receivedCount = 0
        var writesCompleted = 0

        let listener = try TCPListener(loop: loop, host: host, port: 0) { result in
            guard case .success(let server) = result else {
                Issue.record("accept failed: \(result)")
                return
            }
            try? server.startReading { event in
                switch event {
                case .data(let bytes):
                    do { try server.write(bytes) } catch { Issue.record("echo write failed: \(error)") }
                case .end:
                    server.close()
                case .error(let error):
                    Issue.record("server read failed: \(error)")
                    server.close()
                }
            }
        }
        #expect(listener.localAddress.port != 0)
        #expect(listener.localAddress.description.hasPrefix(host == "::1" ? "[::1]:" : "127.0.0.1:"))

        // Distinct chunks, so a reordering or a repeated chunk changes the checksum.
        let chunks = (0..<(total / chunk)).map { patternBytes(count: chunk, seed: UInt64($0 + 1)) }
        for bytes in chunks { bytes.withUnsafeBytes { sent.add($0) } }
        let client = try StreamConnection.connect(loop: loop, to: listener.localAddress) { result in
            if case .failure(let error) = result { Issue.record("connect failed: \(error)") }
        }
        try client.setNoDelay(true)
        try client.startReading { event in
            switch event {
            case .data(let bytes):
                received.add(bytes)
                receivedCount += bytes.count
                if receivedCount == total {
                    client.close()
                    listener.close()
                    harness.finish()
                }
            case .end, .error:
                Issue.record("client stream ended early after \(receivedCount) bytes: \(event)")
                client.close()
                listener.close()
                harness.finish()
            }
        }
        for bytes in chunks {
            try client.write(bytes) { error in
                #expect(error == nil)
                writesCompleted += 1
            }
        }
        harness.run()
        #expect(receivedCount == total)
        #expect(received.value == sent.value)
        #expect(writesCompleted == total / chunk)
    }

    @Test func halfCloseStillCarriesTheReply() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        var serverSaw: [UInt8] = []
        var serverSawEnd = false
        var clientSaw: [UInt8] = []

        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let server) = result else { return }
            try? server.startReading { event in
                switch event {
                case .data(let bytes):
                    serverSaw += bytes
                case .end:
                    serverSawEnd = true
                    // The client's write side is closed; ours must still work.
                    try? server.write(Array("pong".utf8))
                    try? server.shutdown { _ in server.close() }
                case .error(let error):
                    Issue.record("server read failed: \(error)")
                    server.close()
                }
            }
        }
        let client = try StreamConnection.connect(loop: loop, to: listener.localAddress) { result in
            if case .failure(let error) = result { Issue.record("connect failed: \(error)") }
        }
        try client.write(Array("ping".utf8))
        try client.shutdown { error in #expect(error == nil) }
        try client.startReading { event in
            switch event {
            case .data(let bytes):
                clientSaw += bytes
            case .end:
                client.close()
                listener.close()
                harness.finish()
            case .error(let error):
                Issue.record("client read failed: \(error)")
                client.close()
                listener.close()
                harness.finish()
            }
        }
        harness.run()
        #expect(serverSaw == Array("ping".utf8))
        #expect(serverSawEnd)
        #expect(clientSaw == Array("pong".utf8))
    }

    @Test func refusedConnectNamesTheAddress() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        // Learn a free port by binding it, then release it before connecting.
        let probe = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { _ in }
        let address = probe.localAddress
        probe.close()
        var failure: IOError?
        var client: StreamConnection?
        client = try StreamConnection.connect(loop: loop, to: address) { result in
            if case .failure(let error) = result { failure = error }
            #expect(client?.isClosed == true)
            harness.finish()
        }
        harness.run()
        let error = try #require(failure)
        #expect(error.name == "ECONNREFUSED")
        #expect(error.address == address.description)
        #expect(error.operation == "connect")
        #expect("\(error)".contains(address.description))
    }

    @Test func stoppedReaderBoundsTheWriterQueue() throws {
        let harness = try LoopHarness(timeoutMilliseconds: 30_000)
        let loop = harness.loop
        // Far more than the loopback socket buffers of a reader that stopped
        // early can hold, so some of it must stay queued in the writer.
        let chunk = patternBytes(count: 1024 * 1024, seed: 7)
        let chunks = 32
        let total = chunk.count * chunks
        var client: StreamConnection?
        var server: StreamConnection?
        var serverReceived = 0
        var receivedWhilePaused: Int?
        var queueSamples: [Int] = []
        var writesCompleted = 0
        let sampler = LoopTimer(loop: loop)

        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let accepted) = result else { return }
            server = accepted
            try? accepted.startReading { event in
                guard case .data(let bytes) = event else { return }
                serverReceived += bytes.count
                if receivedWhilePaused == nil {
                    // Read once, then stop: the backpressure under test.
                    accepted.stopReading()
                } else if serverReceived == total {
                    accepted.close()
                    client?.close()
                    harness.finish()
                }
            }
        }
        let writer = try StreamConnection.connect(loop: loop, to: listener.localAddress) { result in
            if case .failure(let error) = result { Issue.record("connect failed: \(error)") }
        }
        client = writer
        for _ in 0..<chunks {
            try writer.write(chunk) { error in
                #expect(error == nil)
                writesCompleted += 1
            }
        }
        // Sample the writer's queue while the reader is stopped, then resume it.
        sampler.start(after: 50, repeat: 50) {
            guard let server, !server.isReading else { return }
            receivedWhilePaused = receivedWhilePaused ?? serverReceived
            queueSamples.append(writer.writeQueueSize)
            guard queueSamples.count == 4 else { return }
            #expect(serverReceived == receivedWhilePaused, "reader kept receiving while stopped")
            sampler.close()
            listener.close()
            do { try server.resumeReading() } catch { Issue.record("resume failed: \(error)") }
        }
        harness.run()
        #expect(queueSamples.count == 4)
        #expect(queueSamples.allSatisfy { $0 > 0 && $0 <= total }, "queue samples \(queueSamples)")
        // Once the kernel buffers are full the queue neither drains nor grows.
        #expect(queueSamples[1] == queueSamples[3], "queue samples \(queueSamples)")
        #expect(serverReceived == total)
        #expect(writesCompleted == chunks)
    }

    @Test func reportsAddressesAndAcceptsSocketOptions() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        var serverPeer: String?
        var clientLocal: String?
        var client: StreamConnection?
        let listener = try TCPListener(loop: loop, host: "::1", port: 0) { result in
            guard case .success(let server) = result else { return }
            serverPeer = try? server.peerAddress().description
            server.close()
        }
        client = try StreamConnection.connect(loop: loop, to: listener.localAddress) { result in
            guard let connection = client else { return }
            do {
                try result.get()
                try connection.setNoDelay(true)
                try connection.setKeepAlive(idleSeconds: 15, intervalSeconds: 5, probeCount: 3)
                try connection.setUserTimeout(milliseconds: 45_000)
                #expect(try connection.peerAddress() == listener.localAddress)
                clientLocal = try connection.localAddress().description
            } catch {
                Issue.record("\(error)")
            }
            connection.close()
            listener.close()
            harness.finish()
        }
        harness.run()
        #expect(clientLocal?.hasPrefix("[::1]:") == true)
        #expect(serverPeer != nil)
        #expect(serverPeer == clientLocal)
    }

    @Test func connectTimeoutReportsTimedOut() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            if case .success(let server) = result { server.close() }
        }
        // A 0 ms timer runs in the first loop iteration's timer phase, before
        // the poll phase could report the connect, so the timeout always wins.
        var failure: IOError?
        var calls = 0
        let client = try StreamConnection.connect(loop: loop, to: listener.localAddress, timeoutMilliseconds: 0) {
            result in
            calls += 1
            if case .failure(let error) = result { failure = error }
            listener.close()
            harness.finish()
        }
        harness.run()
        let error = try #require(failure)
        #expect(error.isTimeout)
        #expect(error.address == listener.localAddress.description)
        #expect(calls == 1)
        #expect(client.isClosed)
    }
}
