import Testing

@testable import TunnelPolicy

/// `audit: true`: reading the audit log over the tunnel, and nothing else.
@Suite struct AuditRolePolicyTests {
    static let policy = """
        roles:
          admin:
            admin: true
            allow:
              - services: ["*"]
                nodes: ["*"]
          auditor:
            audit: true
        """

    @Test func anAuditRoleReadsTheLogAndOpensNoStreams() throws {
        let policy = try parsePolicy(Self.policy)
        #expect(policy.readsAudit(roles: ["auditor"]))
        #expect(!policy.isAdmin(roles: ["auditor"]))
        #expect(!policy.decide(roles: ["auditor"], node: "node-17", labels: [:], service: "ssh").isAllowed)
        #expect(!policy.decide(roles: ["auditor"], node: "node-17", labels: [:], service: "shell").isAllowed)
    }

    @Test func adminAloneDoesNotReadTheLogOverTheTunnel() throws {
        #expect(!(try parsePolicy(Self.policy)).readsAudit(roles: ["admin"]))
        #expect(!Policy.builtIn.readsAudit(roles: ["admin"]))
    }

    @Test func auditTakesOnlyABoolean() {
        #expect(
            parseError("roles:\n  a:\n    audit: yes\n")
                == "policy.yaml:3: roles.a.audit: must be true or false (unquoted), not the value \"yes\"")
    }
}
