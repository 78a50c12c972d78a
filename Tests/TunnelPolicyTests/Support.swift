@testable import TunnelPolicy

/// Parses YAML text as the file `policy.yaml`, version `v1`.
func parsePolicy(_ yaml: String) throws(PolicyError) -> Policy {
    try Policy.parse(Array(yaml.utf8), source: "policy.yaml", version: "v1")
}

/// The message `Policy.parse` throws for this text, or nil if it parses.
func parseError(_ yaml: String) -> String? {
    do {
        _ = try parsePolicy(yaml)
        return nil
    } catch {
        return error.message
    }
}

/// The example of docs/POLICY.md, plus a role that needs a label only to be present.
let examplePolicy = """
    # roles → what they may do
    roles:
      admin:
        admin: true
        allow:
          - services: ["*"]
            nodes: ["*"]
      vendor-acme:
        allow:
          - services: [logs]
            labels: {site: plant-a}
      plant-a-tech:
        allow:
          - services: [ssh, shell, k3s]
            nodes: ["plant-a-*", "lab-?"]
            labels: {env: prod}
      auditor:
        allow:
          - services: [logs]
            labels: {audit: "*"}
    """
