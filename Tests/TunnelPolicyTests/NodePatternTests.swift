import Testing

@testable import TunnelPolicy

@Suite struct NodePatternTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let pattern: String
        let name: String
        let matches: Bool
        var testDescription: String { "\(pattern) ~ \(name.isEmpty ? "(empty)" : name) → \(matches)" }
    }

    static let cases: [Case] = [
        // `*` alone: everything, even the empty name.
        Case(pattern: "*", name: "node-17", matches: true),
        Case(pattern: "*", name: "", matches: true),
        Case(pattern: "**", name: "", matches: true),
        // Prefix and suffix: the star may match nothing, the literals must all be there.
        Case(pattern: "plant-a-*", name: "plant-a-01", matches: true),
        Case(pattern: "plant-a-*", name: "plant-a-", matches: true),
        Case(pattern: "plant-a-*", name: "plant-a", matches: false),
        Case(pattern: "plant-a-*", name: "xplant-a-01", matches: false),
        Case(pattern: "*-prod", name: "db-prod", matches: true),
        Case(pattern: "*-prod", name: "-prod", matches: true),
        Case(pattern: "*-prod", name: "db-prod-2", matches: false),
        // `?`: exactly one character.
        Case(pattern: "lab-?", name: "lab-1", matches: true),
        Case(pattern: "lab-?", name: "lab-", matches: false),
        Case(pattern: "lab-?", name: "lab-12", matches: false),
        Case(pattern: "?", name: "", matches: false),
        Case(pattern: "?*", name: "a", matches: true),
        // The whole name, not a part of it.
        Case(pattern: "node-17", name: "node-17", matches: true),
        Case(pattern: "node-17", name: "node-170", matches: false),
        Case(pattern: "node-17", name: "node-1", matches: false),
        Case(pattern: "ode", name: "node", matches: false),
        // Several stars: a later literal that fails moves only the last star on.
        Case(pattern: "a*b*c", name: "abc", matches: true),
        Case(pattern: "a*b*c", name: "axbyc", matches: true),
        Case(pattern: "a*b*c", name: "abcbc", matches: true),
        Case(pattern: "a*b*c", name: "acb", matches: false),
        Case(pattern: "*ab", name: "aab", matches: true),
        Case(pattern: "*aab", name: "aaab", matches: true),
        Case(pattern: "*a*a*", name: "a", matches: false),
        Case(pattern: "*a*a*", name: "aa", matches: true),
        Case(pattern: "*a*a*a*a*b", name: String(repeating: "a", count: 60), matches: false),
        // No regex or bracket syntax: `.`, `[`, `]`, `^`, `$`, `+` and `\` are plain characters,
        // so a backslash escapes nothing.
        Case(pattern: "a.c", name: "abc", matches: false),
        Case(pattern: "a.c", name: "a.c", matches: true),
        Case(pattern: ".*", name: "node", matches: false),
        Case(pattern: ".*", name: ".node", matches: true),
        Case(pattern: "[ab]", name: "a", matches: false),
        Case(pattern: "[ab]", name: "[ab]", matches: true),
        Case(pattern: "^node$", name: "node", matches: false),
        Case(pattern: "a+", name: "aa", matches: false),
        Case(pattern: "a\\*", name: "a\\x", matches: true),
        Case(pattern: "a\\*", name: "a*", matches: false),
    ]

    @Test(arguments: cases)
    func matching(_ c: Case) {
        #expect(NodePattern(c.pattern).matches(c.name) == c.matches)
    }

    /// Patterns that could never match a node name are refused when the policy is read.
    @Test(arguments: ["plant.a", "[ab]", "Plant-*", "node_1", "", String(repeating: "a", count: 64)])
    func unmatchablePatternsAreRefused(_ pattern: String) {
        let message = parseError(
            """
            roles:
              ops:
                allow:
                  - services: [ssh]
                    nodes: ["\(pattern)"]
            """)
        #expect(
            message
                == "policy.yaml:5: roles.ops.allow[0].nodes[0]: invalid node pattern \"\(pattern)\": use 1–63 of a-z 0-9 '-' and the wildcards * (any run) and ? (one character); node names are lower-case DNS labels, so nothing else can match"
        )
    }
}
