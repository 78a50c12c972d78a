import Testing
import TunnelClient

/// The kube-proxy's SOCKS5 handshake: what kubectl sends, in any pieces, and what is refused.
@Suite struct SocksRequestTests {
    let greeting: [UInt8] = [5, 1, 0]
    let connect: [UInt8] = [5, 1, 0, 3, 7] + Array("node-17".utf8) + [0, 80]

    @Test func greetingThenConnectByName() {
        var request = SocksRequest()
        #expect(request.feed(greeting) == .needMore(reply: [5, 0]))
        #expect(request.feed(connect.prefix(6)) == .needMore(reply: []))
        #expect(request.feed(connect.dropFirst(6)) == .connect(reply: [], host: "node-17", port: 80))
    }

    @Test func greetingAndConnectInOneRead() {
        var request = SocksRequest()
        #expect(request.feed(greeting + connect) == .connect(reply: [5, 0], host: "node-17", port: 80))
    }

    @Test func refusals() {
        var noAuthless = SocksRequest()
        #expect(
            noAuthless.feed([5, 1, 2])
                == .refuse(reply: [5, 0xFF], reason: "the SOCKS5 client offers no method without authentication"))
        var byAddress = SocksRequest()
        guard case .refuse(let reply, _) = byAddress.feed(greeting + [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]) else {
            return #expect(Bool(false))
        }
        #expect(reply == [5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0])
        var notSocks = SocksRequest()
        #expect(notSocks.feed(Array("GET / HTTP/1.1\r\n".utf8)) == .refuse(reply: [], reason: "not a SOCKS5 client"))
        var endless = SocksRequest()
        _ = endless.feed([5, 255] + [UInt8](repeating: 1, count: 255))
        #expect(
            endless.feed([UInt8](repeating: 1, count: 300))
                == .refuse(reply: [], reason: "not a SOCKS5 client (too many bytes)"))
    }
}
