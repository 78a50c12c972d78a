import Testing

@testable import TunnelPolicy

/// Every role × node × service of the example policy against a table written by hand.
@Suite struct PolicyMatrixTests {
    static let services = ["ssh", "shell", "k3s", "logs"]

    static let nodes: [(name: String, labels: [String: String])] = [
        ("plant-a-01", ["site": "plant-a", "env": "prod"]),
        ("plant-a-02", ["site": "plant-a", "env": "dev"]),
        ("plant-b-01", ["site": "plant-b", "env": "prod", "audit": "yes"]),
        ("lab-1", ["env": "prod"]),
        ("lab-12", ["env": "prod", "site": "plant-a"]),
        ("office", [:]),
    ]

    /// role → node → services allowed. Each role has one rule, so the allowing rule is `ROLE.allow[0]`.
    static let expected: [String: [String: Set<String>]] = [
        "admin": [
            "plant-a-01": ["ssh", "shell", "k3s", "logs"], "plant-a-02": ["ssh", "shell", "k3s", "logs"],
            "plant-b-01": ["ssh", "shell", "k3s", "logs"], "lab-1": ["ssh", "shell", "k3s", "logs"],
            "lab-12": ["ssh", "shell", "k3s", "logs"], "office": ["ssh", "shell", "k3s", "logs"],
        ],
        "vendor-acme": [ // logs where site=plant-a, whatever the name
            "plant-a-01": ["logs"], "plant-a-02": ["logs"], "plant-b-01": [],
            "lab-1": [], "lab-12": ["logs"], "office": [],
        ],
        "plant-a-tech": [ // ssh/shell/k3s on plant-a-* or lab-? with env=prod
            "plant-a-01": ["ssh", "shell", "k3s"], "plant-a-02": [], "plant-b-01": [],
            "lab-1": ["ssh", "shell", "k3s"], "lab-12": [], "office": [],
        ],
        "auditor": [ // logs wherever the audit label is present
            "plant-a-01": [], "plant-a-02": [], "plant-b-01": ["logs"],
            "lab-1": [], "lab-12": [], "office": [],
        ],
    ]

    @Test func everyCell() throws {
        let policy = try parsePolicy(examplePolicy)
        for (role, row) in Self.expected {
            for node in Self.nodes {
                let allowed = try #require(row[node.name])
                for service in Self.services {
                    let decision = policy.decide(roles: [role], node: node.name, labels: node.labels, service: service)
                    if allowed.contains(service) {
                        #expect(decision == .allowed(rule: "\(role).allow[0]"), "\(role) \(node.name) \(service)")
                    } else {
                        #expect(!decision.isAllowed, "\(role) \(node.name) \(service)")
                    }
                }
                #expect(
                    policy.canReachAnything(roles: [role], node: node.name, labels: node.labels) == !allowed.isEmpty,
                    "\(role) \(node.name)")
            }
        }
    }

    /// Roles add up: any two roles together allow exactly the union of what each allows.
    @Test func everyPairOfRolesIsTheUnion() throws {
        let policy = try parsePolicy(examplePolicy)
        let roles = Array(Self.expected.keys)
        for first in roles {
            for second in roles {
                for node in Self.nodes {
                    let union = try #require(Self.expected[first]?[node.name]).union(
                        try #require(Self.expected[second]?[node.name]))
                    for service in Self.services {
                        let decision = policy.decide(
                            roles: [first, second], node: node.name, labels: node.labels, service: service)
                        #expect(
                            decision.isAllowed == union.contains(service), "\(first)+\(second) \(node.name) \(service)")
                    }
                }
            }
        }
    }

    @Test func theAllowingRuleIsTheFirstInRoleOrder() throws {
        let policy = try parsePolicy(examplePolicy)
        let node = "plant-a-01", labels = ["site": "plant-a", "env": "prod"]
        #expect(
            policy.decide(roles: ["vendor-acme", "plant-a-tech"], node: node, labels: labels, service: "ssh")
                == .allowed(rule: "plant-a-tech.allow[0]"))
        #expect(
            policy.decide(roles: ["vendor-acme", "plant-a-tech"], node: node, labels: labels, service: "logs")
                == .allowed(rule: "vendor-acme.allow[0]"))
        #expect(
            policy.decide(roles: ["vendor-acme", "admin"], node: node, labels: labels, service: "logs")
                == .allowed(rule: "vendor-acme.allow[0]"))
        #expect(
            policy.decide(roles: ["admin", "vendor-acme"], node: node, labels: labels, service: "logs")
                == .allowed(rule: "admin.allow[0]"))
    }

    @Test func unknownRolesAddNothing() throws {
        let policy = try parsePolicy(examplePolicy)
        #expect(
            policy.decide(
                roles: ["ghost", "vendor-acme"], node: "lab-12", labels: ["site": "plant-a"], service: "logs")
                == .allowed(rule: "vendor-acme.allow[0]"))
        #expect(
            !policy.decide(
                roles: ["ghost", "vendor-acme"], node: "lab-12", labels: ["site": "plant-a"], service: "ssh"
            ).isAllowed)
    }

    @Test func laterRulesOfARoleCount() throws {
        let policy = try parsePolicy(
            """
            roles:
              ops:
                allow:
                  - services: [ssh]
                    nodes: [edge-*]
                  - services: [logs]
                    labels: {site: a}
                  - services: [ssh, logs]
                    nodes: [core-1]
            """)
        #expect(
            policy.decide(roles: ["ops"], node: "edge-1", labels: ["site": "a"], service: "ssh")
                == .allowed(rule: "ops.allow[0]"))
        #expect(
            policy.decide(roles: ["ops"], node: "edge-1", labels: ["site": "a"], service: "logs")
                == .allowed(rule: "ops.allow[1]"))
        #expect(
            policy.decide(roles: ["ops"], node: "core-1", labels: [:], service: "logs")
                == .allowed(rule: "ops.allow[2]"))
        #expect(!policy.decide(roles: ["ops"], node: "edge-1", labels: [:], service: "logs").isAllowed)
    }
}

extension PolicyDecision {
    var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }
}
