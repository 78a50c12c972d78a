import Testing

@testable import TunnelPolicy

/// `kubernetes: {groups: [...]}` on a rule: the only way to grant the `kubernetes` service, and
/// the groups an operator is impersonated with on the nodes the rule covers.
@Suite struct KubernetesPolicyTests {
    static let policy = """
        roles:
          admin:
            admin: true
            allow:
              - services: ["*"]
                nodes: ["*"]
          edge-ops:
            allow:
              - services: [ssh]
                nodes: ["plant-a-*"]
                kubernetes: {groups: [edge-operators, edge-viewers]}
              - nodes: ["*"]
                kubernetes: {groups: [edge-viewers]}
          lab:
            allow:
              - labels: {env: lab}
                kubernetes:
                  groups: [lab-admins, edge-viewers]
        """

    @Test func groupsAreTheUnionOfTheCoveringRulesInFileOrder() throws {
        let policy = try parsePolicy(Self.policy)
        #expect(
            policy.kubernetesGroups(roles: ["edge-ops"], node: "plant-a-01", labels: [:]) == [
                "edge-operators", "edge-viewers",
            ])
        #expect(policy.kubernetesGroups(roles: ["edge-ops"], node: "node-17", labels: [:]) == ["edge-viewers"])
        #expect(
            policy.kubernetesGroups(roles: ["lab", "edge-ops"], node: "node-17", labels: ["env": "lab"]) == [
                "lab-admins", "edge-viewers",
            ])
        #expect(policy.kubernetesGroups(roles: ["lab"], node: "node-17", labels: [:]) == [])
        #expect(
            policy.decide(roles: ["edge-ops"], node: "node-17", labels: [:], service: "kubernetes")
                == .allowed(rule: "edge-ops.allow[1]"))
    }

    @Test func aRoleWithoutAMappingGetsNoKubernetesAccessNotEvenWithAStar() throws {
        let policy = try parsePolicy(Self.policy)
        #expect(policy.kubernetesGroups(roles: ["admin"], node: "node-17", labels: [:]) == [])
        #expect(
            policy.decide(roles: ["admin"], node: "node-17", labels: [:], service: "kubernetes")
                == .denied(
                    reason:
                        "your role admin allows only every service but kubernetes on node-17 (rule admin.allow[0]); kubernetes is not granted (only a rule with kubernetes: {groups: [...]} grants it)"
                ))
        #expect(!Policy.builtIn.decide(roles: ["admin"], node: "node-17", labels: [:], service: "kubernetes").isAllowed)
        #expect(Policy.builtIn.kubernetesGroups(roles: ["admin"], node: "node-17", labels: [:]).isEmpty)
    }

    @Test func aKubernetesOnlyRuleGrantsNothingElse() throws {
        let policy = try parsePolicy(Self.policy)
        #expect(policy.decide(roles: ["lab"], node: "n1", labels: ["env": "lab"], service: "kubernetes").isAllowed)
        #expect(
            policy.decide(roles: ["lab"], node: "n1", labels: ["env": "lab"], service: "ssh")
                == .denied(
                    reason:
                        "your role lab allows only kubernetes on n1 (rule lab.allow[0]); ssh is not granted"))
        #expect(policy.decide(roles: ["edge-ops"], node: "node-17", labels: [:], service: "ssh").isAllowed == false)
    }

    @Test(arguments: [
        (
            """
            roles:
              ops:
                allow:
                  - services: [ssh, kubernetes]
                    nodes: ["*"]
            """,
            "policy.yaml:4: roles.ops.allow[0].services[1]: kubernetes is granted by a kubernetes: {groups: [...]} mapping on the rule, which says as whom; remove it from services"
        ),
        (
            """
            roles:
              ops:
                allow:
                  - nodes: ["*"]
                    kubernetes: {groups: []}
            """,
            "policy.yaml:5: roles.ops.allow[0].kubernetes.groups: is empty; list at least one Kubernetes group, or remove kubernetes"
        ),
        (
            """
            roles:
              ops:
                allow:
                  - nodes: ["*"]
                    kubernetes: {group: [a]}
            """, "policy.yaml:5: roles.ops.allow[0].kubernetes.group: unknown key; allowed here: groups"
        ),
        (
            """
            roles:
              ops:
                allow:
                  - nodes: ["*"]
                    kubernetes: {groups: ["edge viewers"]}
            """,
            "policy.yaml:5: roles.ops.allow[0].kubernetes.groups[0]: invalid Kubernetes group \"edge viewers\": use 1–253 of A-Z a-z 0-9 and . _ - : @ /, starting with a letter or digit (e.g. edge-viewers or example.com:ops)"
        ),
        (
            """
            roles:
              ops:
                allow:
                  - nodes: ["*"]
                    kubernetes: [edge-viewers]
            """,
            "policy.yaml:5: roles.ops.allow[0].kubernetes: expected a mapping like {groups: [edge-viewers]}, not a list"
        ),
        (
            """
            roles:
              ops:
                allow:
                  - nodes: ["*"]
            """,
            "policy.yaml:4: roles.ops.allow[0]: services is missing; list what this rule allows, e.g. services: [ssh], or [\"*\"] for every service"
        ),
    ])
    func strictParsing(yaml: String, message: String) {
        #expect(parseError(yaml) == message)
    }
}
