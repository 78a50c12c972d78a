import Testing

@testable import TunnelPolicy

/// Every invalid policy gives one line: file, line, key path, problem and fix.
@Suite struct PolicyParseTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let what: String
        let yaml: String
        let message: String
        var testDescription: String { what }
    }

    static let cases: [Case] = [
        // Unknown keys, at each level.
        Case(
            what: "unknown top-level key",
            yaml: """
                roles:
                  ops:
                    admin: true
                rolez: {}
                """, message: "policy.yaml:4: rolez: unknown key; allowed here: roles"),
        Case(
            what: "unknown role key",
            yaml: """
                roles:
                  ops:
                    alow:
                      - services: [ssh]
                        nodes: ["*"]
                """,
            message: "policy.yaml:3: roles.ops.alow: unknown key; allowed here: admin, audit, allow, record-input"),
        Case(
            what: "unknown rule key",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        node: ["*"]
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].node: unknown key; allowed here: services, nodes, labels, kubernetes"
        ),

        // Wrong types.
        Case(
            what: "top level is a list",
            yaml: """
                - roles
                """, message: "policy.yaml:1: top level: expected a mapping with the key roles, not a list"),
        Case(
            what: "roles is a list",
            yaml: """
                roles: [admin, ops]
                """, message: "policy.yaml:1: roles: expected a mapping of role names to roles, not a list"),
        Case(
            what: "role is a value",
            yaml: """
                roles:
                  ops: everything
                """,
            message:
                "policy.yaml:2: roles.ops: expected a role: a mapping with admin, audit and/or allow (and record-input), not the value \"everything\""
        ),
        Case(
            what: "admin is not a boolean",
            yaml: """
                roles:
                  ops:
                    admin: yes
                """, message: "policy.yaml:3: roles.ops.admin: must be true or false (unquoted), not the value \"yes\""),
        Case(
            what: "admin is quoted",
            yaml: """
                roles:
                  ops:
                    admin: "true"
                """, message: "policy.yaml:3: roles.ops.admin: must be true or false (unquoted), not the value \"true\""
        ),
        Case(
            what: "allow is a mapping",
            yaml: """
                roles:
                  ops:
                    allow:
                      services: [ssh]
                      nodes: ["*"]
                """,
            message:
                "policy.yaml:4: roles.ops.allow: expected a list like [{services: [ssh], nodes: [\"*\"]}], not a mapping"
        ),
        Case(
            what: "rule is a value",
            yaml: """
                roles:
                  ops:
                    allow: [ssh]
                """,
            message:
                "policy.yaml:3: roles.ops.allow[0]: expected a rule: a mapping with services and nodes and/or labels, not the value \"ssh\""
        ),
        Case(
            what: "services is a single value",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: ssh
                        nodes: ["*"]
                """,
            message:
                "policy.yaml:4: roles.ops.allow[0].services: expected a list like [ssh, logs], not the value \"ssh\""),
        Case(
            what: "service is a list",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [[ssh]]
                        nodes: ["*"]
                """, message: "policy.yaml:4: roles.ops.allow[0].services[0]: expected a service name, not a list"),
        Case(
            what: "nodes is a mapping",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        nodes: {name: node-17}
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].nodes: expected a list like [\"plant-a-*\", node-17], not a mapping"),
        Case(
            what: "labels is a list",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: [site]
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].labels: expected a mapping of label: value, like {site: plant-a}, not a list"
        ),
        Case(
            what: "label value is a mapping",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {site: {name: plant-a}}
                """, message: "policy.yaml:5: roles.ops.allow[0].labels.site: expected a label value, not a mapping"),

        // Empty and missing parts.
        Case(
            what: "empty services",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: []
                        nodes: ["*"]
                """,
            message:
                "policy.yaml:4: roles.ops.allow[0].services: is empty; list at least one service, or \"*\" for every service"
        ),
        Case(
            what: "missing services",
            yaml: """
                roles:
                  ops:
                    allow:
                      - nodes: ["*"]
                """,
            message:
                "policy.yaml:4: roles.ops.allow[0]: services is missing; list what this rule allows, e.g. services: [ssh], or [\"*\"] for every service"
        ),
        Case(
            what: "rule with neither nodes nor labels",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                """,
            message:
                "policy.yaml:4: roles.ops.allow[0]: needs nodes or labels (or both), so that a forgotten key cannot grant every node; write nodes: [\"*\"] to mean every node"
        ),
        Case(
            what: "empty nodes",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        nodes: []
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].nodes: is empty; list at least one pattern, or \"*\" for every node"),
        Case(
            what: "empty labels",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {}
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].labels: is empty; give at least one label: value, or remove labels"),
        Case(
            what: "empty allow",
            yaml: """
                roles:
                  ops:
                    admin: true
                    allow: []
                """, message: "policy.yaml:4: roles.ops.allow: is empty; add a rule, or remove allow"),
        Case(
            what: "role that grants nothing",
            yaml: """
                roles:
                  ops:
                    admin: false
                """,
            message:
                "policy.yaml:3: roles.ops: grants nothing; give it admin: true, audit: true or an allow list of rules"),
        Case(
            what: "key without a value",
            yaml: """
                roles:
                  ops:
                """, message: "policy.yaml:2: roles.ops: has no value; give one or remove the key"),
        Case(
            what: "missing roles",
            yaml: """
                {}
                """,
            message:
                "policy.yaml:1: top level: roles is missing; the policy needs a top-level roles: mapping (see docs/POLICY.md)"
        ),
        Case(
            what: "no roles",
            yaml: """
                roles: {}
                """, message: "policy.yaml:1: roles: is empty; define at least one role (see docs/POLICY.md)"),
        Case(
            what: "empty file", yaml: "",
            message: "policy.yaml: the policy is empty; it needs a top-level roles: mapping (see docs/POLICY.md)"),
        Case(
            what: "only comments", yaml: "# nothing yet\n\n",
            message: "policy.yaml: the policy is empty; it needs a top-level roles: mapping (see docs/POLICY.md)"),
        Case(
            what: "role defined twice",
            yaml: """
                roles:
                  ops:
                    admin: true
                  ops:
                    admin: true
                """, message: "policy.yaml:4: roles.ops: appears twice (first at line 2); keep one"),
        Case(
            what: "label key given twice",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {site: a, site: b}
                """, message: "policy.yaml:5: roles.ops.allow[0].labels.site: appears twice (first at line 5); keep one"
        ),

        // Names.
        Case(
            what: "upper-case role name",
            yaml: """
                roles:
                  Ops:
                    admin: true
                """,
            message:
                "policy.yaml:2: roles.Ops: invalid role name \"Ops\": use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. vendor-acme)"
        ),
        Case(
            what: "role name ending in a dash",
            yaml: """
                roles:
                  ops-:
                    admin: true
                """,
            message:
                "policy.yaml:2: roles.ops-: invalid role name \"ops-\": use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. vendor-acme)"
        ),
        Case(
            what: "bad service name",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh, SSH_2]
                        nodes: ["*"]
                """,
            message:
                "policy.yaml:4: roles.ops.allow[0].services[1]: invalid service name \"SSH_2\": use 1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. ssh, k3s-api), or \"*\" for every service"
        ),
        Case(
            what: "bad label key",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {-site: a}
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].labels.-site: invalid label key \"-site\": use [PREFIX/]NAME, NAME being 1–63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, PREFIX a lower-case DNS name (e.g. site or example.com/rack)"
        ),
        Case(
            what: "bad label key prefix",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {Example.com/rack: a}
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].labels.Example.com/rack: invalid label key \"Example.com/rack\": use [PREFIX/]NAME, NAME being 1–63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, PREFIX a lower-case DNS name (e.g. site or example.com/rack)"
        ),
        Case(
            what: "bad label value",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {site: "plant a"}
                """,
            message:
                "policy.yaml:5: roles.ops.allow[0].labels.site: invalid label value \"plant a\": use at most 63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, or \"*\" (quoted) for any value"
        ),

        // Not YAML at all.
        Case(
            what: "unclosed list",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh
                        nodes: ["*"]
                """,
            message: "policy.yaml:5: not valid YAML: did not find expected ',' or ']' (column 14); fix the syntax there"
        ),
        Case(
            what: "unquoted star as a label value",
            yaml: """
                roles:
                  ops:
                    allow:
                      - services: [ssh]
                        labels: {site: *}
                """,
            message:
                "policy.yaml:5: not valid YAML: did not find expected alphabetic or numeric character (column 25); fix the syntax there"
        ),
    ]

    @Test(arguments: cases)
    func invalidPolicy(_ c: Case) {
        #expect(parseError(c.yaml) == c.message)
    }

    @Test func notUTF8() {
        #expect(throws: PolicyError("policy.yaml: not UTF-8 text; a policy is a YAML file (see docs/POLICY.md)")) {
            try Policy.parse([0x72, 0x6F, 0xFF, 0xFE], source: "policy.yaml", version: "v1")
        }
    }

    @Test func messagesNameTheSourceAsGiven() {
        #expect(
            throws: PolicyError(
                "/etc/tunnel/policy.yaml:1: roles: expected a mapping of role names to roles, not a list")
        ) {
            try Policy.parse(Array("roles: []".utf8), source: "/etc/tunnel/policy.yaml", version: "v1")
        }
    }

    @Test func validNamesAndShapes() throws {
        let parsed = try parsePolicy(
            """
            roles:
              ops-2:
                allow:
                  - services: [ssh, k3s-api, "*"]
                    labels: {example.com/rack: R-7, site: "", env: "*", a_b.c: x}
                  - services: [logs]
                    nodes: [node-17, "*-prod", "lab-??"]
              admins:
                admin: true
            """)
        #expect(parsed.roleNames == ["ops-2", "admins"])
        #expect(parsed.version == "v1")
        #expect(parsed.source == "policy.yaml")
        #expect(parsed.isAdmin(roles: ["admins"]))
        #expect(!parsed.isAdmin(roles: ["ops-2"]))
        let labels = ["example.com/rack": "R-7", "site": "", "env": "dev", "a_b.c": "x"]
        #expect(
            parsed.decide(roles: ["ops-2"], node: "n1", labels: labels, service: "anything")
                == .allowed(rule: "ops-2.allow[0]"))
        #expect(
            parsed.decide(roles: ["ops-2"], node: "db-prod", labels: [:], service: "logs")
                == .allowed(rule: "ops-2.allow[1]"))
        #expect(
            parsed.decide(roles: ["ops-2"], node: "lab-12", labels: [:], service: "logs")
                == .allowed(rule: "ops-2.allow[1]"))
    }

    @Test func theDocumentedExampleParses() throws {
        let parsed = try parsePolicy(examplePolicy)
        #expect(parsed.roleNames == ["admin", "vendor-acme", "plant-a-tech", "auditor"])
    }
}
