import Glibc
import Testing
import TunnelIO

@Suite struct PipeTests {
    /// A socketpair stands in for the pipes ssh gives a ProxyCommand: bytes go both ways through
    /// `openPipe`, and a shutdown on one side is EOF on the other.
    @Test func pipeCarriesBytesAndEndOfStream() throws {
        let harness = try LoopHarness()
        var descriptors: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &descriptors) == 0)
        let near = try StreamConnection.openPipe(loop: harness.loop, fileDescriptor: descriptors[0])
        let far = try StreamConnection.openPipe(loop: harness.loop, fileDescriptor: descriptors[1])
        let payload = patternBytes(count: 300_000, seed: 9)
        var received: [UInt8] = []
        try far.startReading { event in
            switch event {
            case .data(let bytes):
                received.append(contentsOf: bytes)
            case .end:
                #expect(received == payload)
                far.close()
                near.close()
                harness.finish()
            case .error(let error):
                Issue.record("pipe read failed: \(error)")
                far.close()
                near.close()
                harness.finish()
            }
        }
        try near.write(payload)
        try near.shutdown()
        harness.run()
    }

    @Test func regularFileIsRefusedWithTheSystemsReason() throws {
        let harness = try LoopHarness()
        let descriptor = open("/etc/hostname", O_RDONLY)
        defer { Glibc.close(descriptor) }
        #expect(throws: IOError.self) {
            _ = try StreamConnection.openPipe(loop: harness.loop, fileDescriptor: descriptor)
        }
        harness.finish()
        harness.run()
    }
}
