import Testing

@testable import TunnelTLS

/// The ClientHello peek a gateway classifies a connection with before any TLS work: real
/// hellos from OpenSSL, hand-made ones, and hostile ones (truncated, oversized, garbage,
/// fragmented, lying lengths, random mutations).
@Suite("ClientHello peek")
struct ClientHelloPeekTests {
    /// The first flight of a real client offering `protocols`.
    static func realHello(_ protocols: [String]) throws -> [UInt8] {
        let client = try TLSConnection(
            context: PKI().clientContext(nil, protocols: protocols), serverHost: "localhost")
        _ = client.advanceHandshake()
        var hello: [UInt8] = []
        client.drainCiphertext(into: &hello)
        return hello
    }

    /// A TLS record of `type` around `fragment`.
    static func record(_ fragment: some Collection<UInt8>, type: UInt8 = 22) -> [UInt8] {
        [type, 3, 1, UInt8(fragment.count >> 8), UInt8(fragment.count & 0xff)] + fragment
    }

    static func vector(_ bytes: [UInt8], lengthBytes: Int) -> [UInt8] {
        (0..<lengthBytes).reversed().map { UInt8(truncatingIfNeeded: bytes.count >> (8 * $0)) } + bytes
    }

    /// A ClientHello handshake message with these extensions (type, body).
    static func handMade(_ extensions: [(Int, [UInt8])]) -> [UInt8] {
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32)
        body += vector([UInt8](repeating: 1, count: 32), lengthBytes: 1)
        body += vector([0x13, 0x01], lengthBytes: 2) + vector([0], lengthBytes: 1)
        let encoded = extensions.flatMap { [UInt8($0.0 >> 8), UInt8($0.0 & 0xff)] + vector($0.1, lengthBytes: 2) }
        body += vector(encoded, lengthBytes: 2)
        return [1] + vector(body, lengthBytes: 3)
    }

    static func alpn(_ names: [String]) -> [UInt8] {
        vector(names.flatMap { vector(Array($0.utf8), lengthBytes: 1) }, lengthBytes: 2)
    }

    static func peek(_ bytes: [UInt8]) -> ClientHelloPeek.Verdict {
        var peek = ClientHelloPeek()
        return peek.feed(bytes)
    }

    @Test("a real ClientHello's ALPN names, in the client's order, whole and byte by byte")
    func realClient() throws {
        let hello = try Self.realHello([operatorProtocol, nodeProtocol])
        #expect(Self.peek(hello) == .offered([operatorProtocol, nodeProtocol]))
        var peek = ClientHelloPeek()
        for (index, byte) in hello.enumerated() {
            let verdict = peek.feed([byte])
            #expect(verdict == (index == hello.count - 1 ? .offered([operatorProtocol, nodeProtocol]) : .needMore))
        }
        #expect(peek.received == hello, "every byte is kept for TLS")
        #expect(try Self.peek(Self.realHello([enrollProtocol])) == .offered([enrollProtocol]))
    }

    @Test("every truncation of a hello needs more; bytes after it are kept, not read")
    func truncated() throws {
        let hello = try Self.realHello([nodeProtocol])
        for length in 0..<hello.count {
            #expect(Self.peek(Array(hello[..<length])) == .needMore, "\(length) bytes")
        }
        var peek = ClientHelloPeek()
        #expect(peek.feed(hello + [23, 3, 3, 0, 1, 0xff]) == .offered([nodeProtocol]))
        #expect(peek.feed([1, 2, 3]) == .offered([nodeProtocol]))
        #expect(peek.received.count == hello.count + 9)
    }

    @Test("a hello split into one-byte records is read; beyond the buffer bound it is unreadable")
    func fragmented() {
        let message = Self.handMade([(16, Self.alpn(["tunnel-node/1"]))])
        let tiny = message.flatMap { Self.record([$0]) }
        #expect(Self.peek(tiny) == .offered(["tunnel-node/1"]))
        let padded = Self.handMade([(21, [UInt8](repeating: 0, count: 4000)), (16, Self.alpn(["x"]))])
        guard case .unreadable = Self.peek(padded.flatMap { Self.record([$0]) }) else {
            Issue.record("a hello in 4,000 one-byte records was read")
            return
        }
    }

    @Test("no ALPN extension offers nothing; an empty name or a lying length is unreadable")
    func handMadeHellos() {
        #expect(Self.peek(Self.record(Self.handMade([]))) == .offered([]))
        #expect(Self.peek(Self.record(Self.handMade([(0, [0, 0])]))) == .offered([]))
        let many = (0..<40).map { "p\($0)" }
        #expect(Self.peek(Self.record(Self.handMade([(16, Self.alpn(many))]))) == .offered(Array(many.prefix(16))))
        let broken: [[UInt8]] = [
            Self.alpn([""]), // an empty name
            [0, 0], // an empty list
            [0, 9, 3, 0x61, 0x62, 0x63], // a list longer than the extension
            Self.alpn(["abc"]) + [0], // bytes after the list
            [0, 4, 9, 0x61, 0x62, 0x63], // a name longer than the list
        ]
        for alpn in broken {
            guard case .unreadable = Self.peek(Self.record(Self.handMade([(16, alpn)]))) else {
                Issue.record("read \(alpn)")
                continue
            }
        }
    }

    @Test("garbage, other record types, other messages and oversized hellos are unreadable at once")
    func garbage() {
        let inputs: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: gateway\r\n\r\n".utf8),
            Array("SSH-2.0-OpenSSH_9.2\r\n".utf8),
            Self.record([1, 0, 0, 0], type: 23), // application data
            [22, 4, 1, 0, 4], // not TLS 1.x
            [22, 3, 1, 0x40, 0x01], // a record over 2^14
            [22, 3, 1, 0, 0], // an empty record
            Self.record([2, 0, 0, 0]), // a ServerHello
            Self.record([1, 0x10, 0, 0]), // a ClientHello of 1 MiB
        ]
        for input in inputs {
            guard case .unreadable = Self.peek(input) else {
                Issue.record("read \(input.prefix(8))")
                continue
            }
        }
    }

    @Test("random bytes and every single-byte mutation of a real hello never trap")
    func hostileMutations() throws {
        let hello = try Self.realHello([operatorProtocol])
        // A fixed xorshift sequence, so a failure reproduces.
        var state: UInt64 = 0x11AD_5EED
        func nextRandom() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        for index in hello.indices {
            var mutated = hello
            mutated[index] ^= UInt8(truncatingIfNeeded: nextRandom() | 1)
            var peek = ClientHelloPeek()
            for chunk in stride(from: 0, to: mutated.count, by: 97) {
                _ = peek.feed(mutated[chunk..<min(chunk + 97, mutated.count)])
            }
            if case .offered(let names) = peek.verdict { #expect(names.count <= ClientHelloPeek.maximumNames) }
        }
        for _ in 0..<2_000 {
            let length = Int(nextRandom() % 512)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: nextRandom()) }
            if nextRandom() % 2 == 0, bytes.count >= 5 {
                bytes[0] = 22
                bytes[1] = 3
            }
            _ = Self.peek(bytes)
        }
    }
}
