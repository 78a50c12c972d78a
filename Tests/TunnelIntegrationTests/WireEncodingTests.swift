import Testing
import TunnelRuntime

/// A message that cannot be encoded is an error at the sender, not an empty message the peer
/// would read as a request it cannot parse.
@Suite struct WireEncodingTests {
    struct Reading: Encodable {
        let value: Double
    }

    @Test func aMessageJSONCannotCarryThrowsNamingItsType() {
        #expect(throws: WireEncodingError.self) { try TunnelProtocol.encode(Reading(value: .nan)) }
        do {
            _ = try TunnelProtocol.encode(Reading(value: .infinity))
        } catch {
            #expect(error.message.contains("Reading"))
        }
    }

    @Test func aMessageRoundTrips() throws {
        let bytes = try TunnelProtocol.encode(OperatorRequest.connect(node: "node-17", service: "ssh"))
        #expect(TunnelProtocol.decode(OperatorRequest.self, from: bytes) == .connect(node: "node-17", service: "ssh"))
    }
}
