import TunnelText

/// Which operator roles may open which services on which nodes, read from a YAML policy file.
///
/// ```yaml
/// roles:
///   admin:
///     admin: true                  # may run token/user/node/policy commands
///     allow:
///       - services: ["*"]
///         nodes: ["*"]
///   vendor-acme:
///     record-input: false          # opt-out: its recorded shells keep output only (see docs/POLICY.md)
///     allow:
///       - services: [logs, shell]
///         labels: {site: plant-a}  # every label must match; value "*" = key present
///   plant-a-tech:
///     allow:
///       - services: [ssh, shell, k3s]
///         nodes: ["plant-a-*", "lab-?"]   # * any run, ? one character, whole name
///         labels: {env: prod}
/// ```
///
/// - `roles` (required, non-empty) maps role names to roles. A role has `admin: true|false`
///   and/or `allow`, a non-empty list of rules; a role must have `admin: true` or rules.
///   Recorded `shell` sessions keep keystrokes as well as output; `record-input: false` opts a
///   role out, which lets `stty -echo` hide what its operators type from the recording.
/// - A rule has `services` (required, non-empty; `"*"` = every service) and at least one of
///   `nodes` (name globs, any may match) and `labels` (all must match). Requiring one of them
///   keeps a forgotten key from granting every node; write `nodes: ["*"]` to mean every node.
/// - Default deny: a stream opens only if some rule of some role of the operator matches the
///   node and lists the service. Roles add up; no rule takes anything away.
/// - Role and service names are DNS labels (1–63 of `a-z 0-9 -`, starting and ending with a
///   letter or digit); node patterns are 1–63 of `a-z 0-9 - * ?`; label keys and values follow
///   Kubernetes (`[PREFIX/]NAME`, NAME 1–63 of `A-Z a-z 0-9 . _ -`).
/// - Unknown keys, repeated keys and keys without a value are errors.
///
/// Everything is compiled at parse time, so a check at stream open does dictionary look-ups,
/// string compares and glob walks over the node name, and allocates only to explain a denial.
/// docs/POLICY.md is the operator's version of this.
public struct Policy: Sendable {
    /// Names the policy in messages and logs: the first 16 hex digits of the SHA-256 of the
    /// file, computed by the caller, or "built-in".
    public let version: String
    /// Where the policy came from (the file's path), for messages.
    public let source: String
    /// Role names in the order of the file.
    public let roleNames: [String]
    let roles: [String: Role]

    init(version: String, source: String, roles: [Role]) {
        self.version = version
        self.source = source
        self.roleNames = roles.map(\.name)
        self.roles = Dictionary(uniqueKeysWithValues: roles.map { ($0.name, $0) })
    }

    /// The policy used when no policy file is configured: role `admin` is admin and may open
    /// every service on every node; every other role may do nothing.
    public static let builtIn = Policy(
        version: "built-in", source: "built-in",
        roles: [
            Role(
                name: "admin", isAdmin: true,
                rules: [
                    Rule(
                        reference: "admin.allow[0]", role: "admin", services: .any, nodes: [NodePattern("*")],
                        labels: [])
                ])
        ])

    /// The node service that proxies the node's Kubernetes API as the operator (`docs/KUBERNETES.md`).
    /// Only rules with a `kubernetes:` mapping grant it, never `"*"`: who the operator becomes on
    /// the cluster must be written down.
    public static let kubernetesService = "kubernetes"

    /// The Kubernetes groups `roles` are mapped to on the node: the union, in file order, of the
    /// `kubernetes.groups` of every rule of theirs that covers the node. Empty means no access.
    public func kubernetesGroups(roles: [String], node: String, labels: [String: String]) -> [String] {
        var groups: [String] = []
        for name in roles {
            for rule in self.roles[name]?.rules ?? [] where rule.covers(node: node, labels: labels) {
                for group in rule.kubernetesGroups ?? [] where !groups.contains(group) { groups.append(group) }
            }
        }
        return groups
    }

    /// Whether recorded shell sessions of `roles` keep keystrokes: yes unless every one of the
    /// operator's roles in the policy opted out with `record-input: false`.
    public func recordsInput(roles: [String]) -> Bool {
        let defined = roles.compactMap { self.roles[$0] }
        return defined.isEmpty || defined.contains { $0.recordsInput }
    }

    /// Whether any of `roles` has `audit: true`, which reading the audit log over the tunnel needs.
    /// Admin alone does not grant it: who may read every session's evidence is written down.
    public func readsAudit(roles: [String]) -> Bool {
        roles.contains { self.roles[$0]?.readsAudit == true }
    }

    /// Whether any of `roles` has `admin: true`, which the token/user/node/policy commands need.
    public func isAdmin(roles: [String]) -> Bool {
        roles.contains { self.roles[$0]?.isAdmin == true }
    }

    /// Whether `roles` may open `service` on the node; a denial says why in one sentence.
    public func decide(roles: [String], node: String, labels: [String: String], service: String) -> PolicyDecision {
        for name in roles {
            guard let role = self.roles[name] else { continue }
            for rule in role.rules where rule.grants(service) && rule.covers(node: node, labels: labels) {
                return .allowed(rule: rule.reference)
            }
        }
        return .denied(reason: denialReason(roles: roles, node: node, labels: labels, service: service))
    }

    /// Whether any rule of any of `roles` covers the node, whatever its services: decides which
    /// nodes an operator is shown.
    public func canReachAnything(roles: [String], node: String, labels: [String: String]) -> Bool {
        roles.contains { name in
            self.roles[name]?.rules.contains { $0.covers(node: node, labels: labels) } == true
        }
    }
}

/// The outcome of a check at stream open.
public enum PolicyDecision: Equatable, Sendable {
    /// `rule` names the rule that allowed it, like `vendor-acme.allow[0]`, for the audit log.
    case allowed(rule: String)
    /// `reason` is one sentence for the operator.
    case denied(reason: String)
}

/// A policy file that cannot be used: one line naming the file, the line, the key path and the fix.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

struct Role: Sendable {
    let name: String
    let isAdmin: Bool
    /// May read the audit log over the tunnel (`tunnel audit serve --gateway`); opens no streams.
    var readsAudit = false
    /// Recorded shell sessions of this role keep the keystrokes too, not only the output (the
    /// default; `record-input: false` opts out).
    var recordsInput = true
    let rules: [Rule]
}

/// One entry of a role's `allow` list.
struct Rule: Sendable {
    enum Services: Sendable {
        case any
        /// A handful of names: a linear scan beats hashing the requested name.
        case only([String])
    }

    /// One entry of `labels`; a nil value is `"*"`: the key must be present with any value.
    struct Label: Sendable {
        let key: String
        let value: String?

        func matches(_ labels: [String: String]) -> Bool {
            // Bytes, not `String.==`, which would equate canonically equivalent Unicode.
            guard let actual = labels[key] else { return false }
            return value.map { Names.same(actual, $0) } ?? true
        }
    }

    /// `role.allow[index]`, as the audit log and messages name it.
    let reference: String
    let role: String
    let services: Services
    /// Nil when the rule has no `nodes` key: the labels alone decide.
    let nodes: [NodePattern]?
    /// Empty when the rule has no `labels` key.
    let labels: [Label]
    /// The Kubernetes groups of `kubernetes: {groups: [...]}`; nil when the rule has none, and
    /// then it does not grant the `kubernetes` service.
    var kubernetesGroups: [String]? = nil

    func grants(_ service: String) -> Bool {
        if service == Policy.kubernetesService { return kubernetesGroups != nil }
        switch services {
        case .any: return true
        case .only(let names): return names.contains { Names.same($0, service) }
        }
    }

    func covers(node: String, labels nodeLabels: [String: String]) -> Bool {
        matchesName(node) && labels.allSatisfy { $0.matches(nodeLabels) }
    }

    func matchesName(_ node: String) -> Bool {
        nodes?.contains { $0.matches(node) } ?? true
    }
}
