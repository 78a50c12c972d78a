import Testing

@testable import TunnelTLS

/// Key exchange is X25519 or P-256 on both ends (issue #9): the client's ClientHello offers
/// no finite-field group. (The gateway side is checked with `openssl s_client -groups ffdhe8192`
/// in the integration tests.)
@Suite("Key exchange groups")
struct KeyExchangeTests {
    /// The TLS named groups a client offers, read from its first flight (RFC 8446 §4.1.2).
    static func offeredGroups(_ context: TLSContext) throws -> [UInt16] {
        let client = try TLSConnection(context: context, serverHost: "localhost")
        _ = client.advanceHandshake()
        var hello: [UInt8] = []
        client.drainCiphertext(into: &hello)
        var index = 5 + 4 + 2 + 32 // record header, handshake header, version, random
        func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard index + count <= hello.count else { throw TLSError(.invalidArgument, "short ClientHello") }
            defer { index += count }
            return hello[index..<index + count]
        }
        func number(_ bytes: Int) throws -> Int { try take(bytes).reduce(0) { $0 << 8 | Int($1) } }
        _ = try take(number(1)) // session id
        _ = try take(number(2)) // cipher suites
        _ = try take(number(1)) // compression methods
        let end = try number(2) + index
        while index < end {
            let type = try number(2), length = try number(2)
            guard type == 0x000a else {
                _ = try take(length)
                continue
            }
            let list = try take(number(2))
            return stride(from: list.startIndex, to: list.endIndex, by: 2).map {
                UInt16(list[$0]) << 8 | UInt16(list[$0 + 1])
            }
        }
        return []
    }

    @Test("a client offers X25519 and P-256 (and a hybrid group where OpenSSL has one), no ffdhe")
    func clientGroups() throws {
        let pki = try PKI()
        let groups = try Self.offeredGroups(pki.clientContext(nil, protocols: [enrollProtocol]))
        let x25519: UInt16 = 0x001d, p256: UInt16 = 0x0017, hybrid: UInt16 = 0x11ec
        #expect(groups.contains(x25519) && groups.contains(p256), "\(groups)")
        #expect(
            groups.allSatisfy { [x25519, p256, hybrid].contains($0) }, "offered \(groups.map { String($0, radix: 16) })"
        )
        #expect(!groups.contains { (0x0100...0x01ff).contains($0) }, "finite-field groups offered")
    }
}
