import Testing
import TunnelText

@Suite("Name rules")
struct NamesTests {
    @Test("node names are lower-case ASCII DNS labels; no Unicode alias or upper case passes")
    func nodeNames() {
        for good in ["node-17", "a", "0", String(repeating: "a", count: 63)] {
            #expect(NameKind.node.accepts(good), "\(good)")
        }
        for bad in [
            "", "Kx-1", "\u{212A}x-1", "k\u{0301}", "-a", "a-", "a.b", "a_b", "node 1", "node\n1",
            String(repeating: "a", count: 64), "ｎｏｄｅ",
        ] {
            #expect(!NameKind.node.accepts(bad), "\(bad)")
        }
        // Swift's own equality would make these one name; the rule and `same` keep them apart.
        #expect("\u{212A}x-1" == "Kx-1")
        #expect(!Names.same("\u{212A}x-1", "Kx-1"))
        #expect(Names.asciiLowercased("\u{212A}X-1") == "\u{212A}x-1")
    }

    @Test("token ids are exactly 8 lower-case hex digits")
    func tokenIDs() {
        #expect(NameKind.tokenID.accepts("0a1b2c3d"))
        for bad in ["0A1B2C3D", "0a1b2c3", "0a1b2c3d4", "0a1b2c3g", "0a1b2c3\n", String(repeating: "a", count: 4096)] {
            #expect(!NameKind.tokenID.accepts(bad), "\(bad)")
        }
    }

    @Test("labels follow Kubernetes, users allow mail-like names")
    func labelsAndUsers() {
        #expect(NameKind.labelKey.accepts("example.com/rack"))
        #expect(NameKind.labelKey.accepts("Site"))
        #expect(!NameKind.labelKey.accepts("Example.com/rack"))
        #expect(!NameKind.labelKey.accepts("tier\n"))
        #expect(NameKind.labelValue.accepts(""))
        #expect(!NameKind.labelValue.accepts("gold\u{1b}[2J"))
        #expect(NameKind.user.accepts("alice@example.com"))
        #expect(!NameKind.user.accepts("@alice"))
        #expect(!NameKind.user.accepts("al ice"))
    }

    @Test("a refusal quotes the name escaped and cut short, then the rule")
    func problemMessage() throws {
        let problem = NameProblem(kind: .node, name: "x\n" + String(repeating: "y", count: 4000))
        #expect(problem.message.hasPrefix("invalid node name \"x\\ny"))
        #expect(!problem.message.contains("\n"))
        #expect(problem.message.count < 300)
        #expect(throws: NameProblem.self) { try Names.check("Kx-1", as: .node) }
    }
}
