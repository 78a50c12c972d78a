import Testing

@testable import TunnelPolicy

@Suite struct PolicyDecisionTests {
    @Test func builtIn() {
        let policy = Policy.builtIn
        #expect(policy.version == "built-in")
        #expect(policy.source == "built-in")
        #expect(policy.roleNames == ["admin"])
        #expect(policy.isAdmin(roles: ["admin"]))
        #expect(!policy.isAdmin(roles: ["ops"]))
        #expect(
            policy.decide(roles: ["admin"], node: "node-17", labels: [:], service: "ssh")
                == .allowed(rule: "admin.allow[0]"))
        #expect(
            policy.decide(roles: ["ops", "admin"], node: "x", labels: ["site": "a"], service: "k3s")
                == .allowed(rule: "admin.allow[0]"))
        #expect(policy.canReachAnything(roles: ["admin"], node: "node-17", labels: [:]))
        #expect(!policy.canReachAnything(roles: ["ops"], node: "node-17", labels: [:]))
        #expect(
            policy.decide(roles: ["ops"], node: "node-17", labels: [:], service: "ssh")
                == .denied(reason: "none of your roles (ops) is defined in policy built-in; ask an admin to grant one"))
    }

    /// The built-in policy is exactly what docs/POLICY.md says it is equivalent to.
    @Test func builtInEqualsItsDocumentedFile() throws {
        let file = try parsePolicy(
            """
            roles:
              admin:
                admin: true
                allow:
                  - services: ["*"]
                    nodes: ["*"]
            """)
        for roles in [["admin"], ["ops"], [], ["ops", "admin"]] {
            #expect(file.isAdmin(roles: roles) == Policy.builtIn.isAdmin(roles: roles))
            for (node, labels) in [("node-17", [:]), ("plant-a-01", ["site": "plant-a"])]
                as [(String, [String: String])]
            {
                #expect(
                    file.canReachAnything(roles: roles, node: node, labels: labels)
                        == Policy.builtIn.canReachAnything(roles: roles, node: node, labels: labels))
                for service in ["ssh", "logs"] {
                    let fromFile = file.decide(roles: roles, node: node, labels: labels, service: service)
                    let builtIn = Policy.builtIn.decide(roles: roles, node: node, labels: labels, service: service)
                    #expect(fromFile.isAllowed == builtIn.isAllowed)
                    if fromFile.isAllowed { #expect(fromFile == builtIn) }
                }
            }
        }
    }

    @Test func isAdmin() throws {
        let policy = try parsePolicy(
            """
            roles:
              root:
                admin: true
              helper:
                admin: false
                allow:
                  - services: [ssh]
                    nodes: ["*"]
              viewer:
                allow:
                  - services: [logs]
                    nodes: ["*"]
            """)
        #expect(policy.isAdmin(roles: ["root"]))
        #expect(policy.isAdmin(roles: ["viewer", "root"]))
        #expect(!policy.isAdmin(roles: ["helper"]))
        #expect(!policy.isAdmin(roles: ["viewer"]))
        #expect(!policy.isAdmin(roles: ["admin"])) // not special outside the built-in policy
        #expect(!policy.isAdmin(roles: []))
        // An admin-only role opens nothing: admin is about commands, not streams.
        #expect(!policy.decide(roles: ["root"], node: "n", labels: [:], service: "ssh").isAllowed)
        #expect(!policy.canReachAnything(roles: ["root"], node: "n", labels: [:]))
    }

    @Test func canReachAnythingIgnoresTheService() throws {
        let policy = try parsePolicy(examplePolicy)
        let labels = ["site": "plant-a", "env": "dev"]
        #expect(policy.canReachAnything(roles: ["vendor-acme"], node: "plant-a-02", labels: labels))
        #expect(policy.canReachAnything(roles: ["plant-a-tech", "vendor-acme"], node: "plant-a-02", labels: labels))
        #expect(!policy.canReachAnything(roles: ["plant-a-tech"], node: "plant-a-02", labels: labels))
        #expect(!policy.canReachAnything(roles: ["ghost"], node: "plant-a-02", labels: labels))
        #expect(!policy.canReachAnything(roles: [], node: "plant-a-02", labels: labels))
    }

    // MARK: - Denial sentences

    func reason(_ policy: Policy, _ roles: [String], _ node: String, _ labels: [String: String], _ service: String)
        -> String?
    {
        guard case .denied(let reason) = policy.decide(roles: roles, node: node, labels: labels, service: service)
        else { return nil }
        return reason
    }

    @Test func noRoles() throws {
        let policy = try parsePolicy(examplePolicy)
        #expect(
            reason(policy, [], "node-17", [:], "ssh")
                == "you have no roles, so policy v1 grants you nothing; ask an admin to grant one")
    }

    @Test func noRoleIsDefined() throws {
        let policy = try parsePolicy(examplePolicy)
        #expect(
            reason(policy, ["x", "y"], "node-17", [:], "ssh")
                == "none of your roles (x, y) is defined in policy v1; ask an admin to grant one")
    }

    @Test func rolesWithoutRules() throws {
        let policy = try parsePolicy(
            """
            roles:
              root:
                admin: true
            """)
        #expect(
            reason(policy, ["root", "ghost"], "node-17", [:], "ssh")
                == "your roles (root) have no allow rules in policy v1; ask an admin to grant one")
    }

    @Test func serviceNotGranted() throws {
        let policy = try parsePolicy(examplePolicy)
        #expect(
            reason(policy, ["vendor-acme"], "node-17", ["site": "plant-a"], "ssh")
                == "your role vendor-acme allows only logs on node-17 (rule vendor-acme.allow[0]); ssh is not granted")
        // Several covering rules: their roles, services (each once) and rules, in order.
        #expect(
            reason(
                policy, ["vendor-acme", "auditor", "plant-a-tech"], "node-17", ["site": "plant-a", "audit": "1"], "ssh")
                == "your roles vendor-acme, auditor allow only logs on node-17 (rules vendor-acme.allow[0], auditor.allow[0]); ssh is not granted"
        )
        #expect(
            reason(
                policy, ["plant-a-tech", "vendor-acme"], "plant-a-01", ["site": "plant-a", "env": "prod"], "metrics")
                == "your roles plant-a-tech, vendor-acme allow only ssh, shell, k3s, logs on plant-a-01 (rules plant-a-tech.allow[0], vendor-acme.allow[0]); metrics is not granted"
        )
    }

    @Test func noRuleCoversTheNode() throws {
        let policy = try parsePolicy(examplePolicy)
        #expect(
            reason(policy, ["vendor-acme"], "node-17", ["site": "plant-b"], "logs")
                == "no rule of your roles (vendor-acme) covers node-17; vendor-acme.allow[0] needs site=plant-a")
        // The nearest rule would not grant the service either: say so.
        #expect(
            reason(policy, ["vendor-acme"], "node-17", ["site": "plant-b"], "ssh")
                == "no rule of your roles (vendor-acme) covers node-17; vendor-acme.allow[0] needs site=plant-a and grants only logs"
        )
        // Every condition of the rule, the name first.
        #expect(
            reason(policy, ["plant-a-tech"], "office", [:], "ssh")
                == "no rule of your roles (plant-a-tech) covers office; plant-a-tech.allow[0] needs a node name matching plant-a-* or lab-? and env=prod"
        )
        // A label that must only be present.
        #expect(
            reason(policy, ["auditor", "ghost"], "office", ["env": "prod"], "logs")
                == "no rule of your roles (auditor) covers office; auditor.allow[0] needs label audit set")
    }

    /// Among rules equally far from the node, one that grants the service is named first.
    @Test func closestRulePrefersTheRequestedService() throws {
        let policy = try parsePolicy(examplePolicy)
        #expect(
            reason(
                policy, ["vendor-acme", "plant-a-tech"], "plant-b-01",
                ["site": "plant-b", "env": "prod", "audit": "yes"], "ssh")
                == "no rule of your roles (vendor-acme, plant-a-tech) covers plant-b-01; plant-a-tech.allow[0] needs a node name matching plant-a-* or lab-? and env=prod"
        )
        #expect(
            reason(policy, ["vendor-acme", "plant-a-tech"], "plant-b-01", ["site": "plant-b", "env": "prod"], "logs")
                == "no rule of your roles (vendor-acme, plant-a-tech) covers plant-b-01; vendor-acme.allow[0] needs site=plant-a"
        )
    }

    /// Issue #9, item 8: a denial reads the same whatever labels the node has, or whether it
    /// exists at all, so it tells an operator nothing about nodes they cannot reach.
    @Test func denialsDoNotDescribeTheNode() throws {
        let policy = try parsePolicy(examplePolicy)
        let absent = reason(policy, ["vendor-acme", "plant-a-tech"], "plant-b-01", [:], "ssh")
        for labels in [
            ["site": "plant-b", "env": "prod", "audit": "yes"], ["env": "prod"], ["tier": "gold", "secret": "x"],
        ] {
            #expect(reason(policy, ["vendor-acme", "plant-a-tech"], "plant-b-01", labels, "ssh") == absent)
        }
        #expect(absent?.contains("gold") == false && absent?.contains("labels") == false)
    }

    @Test func closestRulesAreFewestUnmetFirstAndCapped() throws {
        let policy = try parsePolicy(
            """
            roles:
              ops:
                allow:
                  - services: [ssh]
                    labels: {site: a, env: prod}
                  - services: [ssh]
                    labels: {site: b}
                  - services: [ssh]
                    labels: {site: c}
                  - services: [ssh]
                    labels: {site: d}
                  - services: [ssh]
                    labels: {site: e}
            """)
        #expect(
            reason(policy, ["ops"], "n", ["site": "z"], "ssh")
                == "no rule of your roles (ops) covers n; ops.allow[1] needs site=b; ops.allow[2] needs site=c; 2 more rules come as close"
        )
        let three = try parsePolicy(
            """
            roles:
              ops:
                allow:
                  - services: [ssh]
                    labels: {site: b}
                  - services: [ssh]
                    labels: {site: c}
                  - services: [ssh]
                    labels: {site: d}
            """)
        #expect(
            reason(three, ["ops"], "n", [:], "ssh")
                == "no rule of your roles (ops) covers n; ops.allow[0] needs site=b; ops.allow[1] needs site=c; 1 more rule comes as close"
        )
    }
}

/// Issue #9, item 4: keystrokes are recorded unless every role of the operator opts out.
@Suite struct RecordInputTests {
    @Test func keystrokesAreRecordedByDefault() throws {
        let policy = try parsePolicy(
            """
            roles:
              ops:
                allow:
                  - services: [shell]
                    nodes: ["*"]
              vendor:
                record-input: false
                allow:
                  - services: [shell]
                    nodes: ["*"]
            """)
        #expect(policy.recordsInput(roles: ["ops"]))
        #expect(policy.recordsInput(roles: []))
        #expect(policy.recordsInput(roles: ["ghost"]))
        #expect(policy.recordsInput(roles: ["vendor", "ops"]))
        #expect(!policy.recordsInput(roles: ["vendor"]))
        #expect(Policy.builtIn.recordsInput(roles: ["admin"]))
    }
}
