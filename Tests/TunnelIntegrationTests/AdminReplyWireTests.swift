import Testing
import TunnelRuntime

/// `AdminReply` is an enum in Swift and one flat JSON object on the wire, the object the struct
/// of optionals it replaced wrote: older tunnels and newer gateways still read each other.
@Suite("Admin reply wire form")
struct AdminReplyWireTests {
    static let token = TokenEntry(
        id: "0a1b2c3d", secretSHA256: String(repeating: "f", count: 64), nodeName: "edge-1", labels: ["site": "a"],
        createdAt: 10, expiresAt: 20, usesAllowed: 2, usesCount: 1, createdBy: "operator alice")

    static func json(_ reply: AdminReply) throws -> String {
        String(decoding: try TunnelProtocol.encode(reply), as: UTF8.self)
    }

    @Test("every case comes back as itself")
    func roundTrip() throws {
        let replies: [AdminReply] = [
            .done("revoked node edge-1"), .token("tnl1.x", message: "token x enrolls any name"), .tokens([]),
            .users([UserEntry(name: "bob", roles: ["ops"], createdAt: 1, createdBy: "root", revokedBy: "alice")]),
            .nodes([]), .nodes([], next: "edge-9"), .operatorCertificate("CERT", gatewayCA: "CA", message: "added bob"),
            .policy("policy 3 from x"),
            .refused(AdminFailure(.notFound, "there is no node edge-9")),
        ]
        for reply in replies {
            #expect(TunnelProtocol.decode(AdminReply.self, from: try TunnelProtocol.encode(reply)) == reply)
        }
    }

    @Test("a listed token carries its fields but never its secret's hash")
    func tokenWithoutHash() throws {
        let text = try Self.json(.tokens([Self.token]))
        #expect(!text.contains("secretSHA256") && !text.contains("ffff"))
        #expect(
            text
                == #"{"tokens":[{"createdAt":10,"createdBy":"operator alice","expiresAt":20,"id":"0a1b2c3d","labels":{"site":"a"},"nodeName":"edge-1","usesAllowed":2,"usesCount":1}]}"#
        )
        var listed = Self.token
        listed.secretSHA256 = ""
        #expect(TunnelProtocol.decode(AdminReply.self, from: Array(text.utf8)) == .tokens([listed]))
    }

    @Test("replies of the struct era read as their cases; a refusal without a code is .refused")
    func olderGateway() {
        func read(_ json: String) -> AdminReply? { TunnelProtocol.decode(AdminReply.self, from: Array(json.utf8)) }
        #expect(
            read(#"{"error":"you have no admin role"}"#) == .refused(AdminFailure(.refused, "you have no admin role")))
        #expect(read(#"{"error":"x","errorCode":"from-the-future"}"#) == .refused(AdminFailure(.refused, "x")))
        #expect(read(#"{"message":"audit read recorded"}"#) == .done("audit read recorded"))
        #expect(read(#"{"nodes":[]}"#) == .nodes([], next: nil))
        #expect(read(#"{"token":"tnl1.a","message":"m"}"#) == .token("tnl1.a", message: "m"))
        #expect(
            read(#"{"users":[{"name":"bob","roles":["ops"],"createdAt":1,"createdBy":"root"}]}"#)
                == .users([UserEntry(name: "bob", roles: ["ops"], createdAt: 1, createdBy: "root")]))
        #expect(
            read(#"{"certificate":"C","gatewayCA":"A","message":"m"}"#)
                == .operatorCertificate("C", gatewayCA: "A", message: "m"))
    }

    @Test("a refusal says its code on the wire")
    func refusalCode() throws {
        #expect(
            try Self.json(.refused(AdminFailure(.notAllowed, "no"))) == #"{"error":"no","errorCode":"not-allowed"}"#)
    }
}
