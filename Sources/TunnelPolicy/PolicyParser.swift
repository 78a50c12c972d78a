import TunnelText
import Yams

extension Policy {
    /// Compiles a policy file. Pure: the caller reads the file and computes `version` (the first
    /// 16 hex digits of the SHA-256 of `bytes`; this module has no SHA-256 of its own).
    ///
    /// The first problem found is thrown as one line, `SOURCE:LINE: KEY.PATH: problem; fix`.
    public static func parse(_ bytes: [UInt8], source: String, version: String) throws(PolicyError) -> Policy {
        let roles = try PolicyParser(source: source).roles(from: bytes)
        return Policy(version: version, source: source, roles: roles)
    }
}

/// Walks the YAML tree strictly (known keys only, each once, each with a value) and compiles
/// each role and rule as it goes.
struct PolicyParser {
    let source: String

    /// A key of a mapping with its value and the dotted key path naming it in messages.
    struct Entry {
        let key: String
        let keyNode: Node
        let value: Node
        let path: String
    }

    func roles(from bytes: [UInt8]) throws(PolicyError) -> [Role] {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PolicyError("\(source): not UTF-8 text; a policy is a YAML file (see docs/POLICY.md)")
        }
        let document: Node?
        do {
            document = try Yams.compose(yaml: text)
        } catch {
            throw yamlError(error)
        }
        guard let root = document, !isNull(root) else {
            throw PolicyError(
                "\(source): the policy is empty; it needs a top-level roles: mapping (see docs/POLICY.md)")
        }
        let top = try entries(of: root, path: nil, allowedKeys: ["roles"], expected: "a mapping with the key roles")
        guard let rolesEntry = top.first else { // the only key allowed, and at most once
            throw failure(
                root, "top level", "roles is missing; the policy needs a top-level roles: mapping (see docs/POLICY.md)")
        }
        let definitions = try entries(
            of: rolesEntry.value, path: rolesEntry.path, allowedKeys: nil, expected: "a mapping of role names to roles")
        guard !definitions.isEmpty else {
            throw failure(rolesEntry.value, rolesEntry.path, "is empty; define at least one role (see docs/POLICY.md)")
        }
        var roles: [Role] = []
        for definition in definitions {
            roles.append(try role(definition))
        }
        return roles
    }

    private func role(_ definition: Entry) throws(PolicyError) -> Role {
        guard PolicyNames.isDNSLabel(definition.key) else {
            throw failure(
                definition.keyNode, definition.path, "invalid role name \"\(definition.key)\": \(PolicyNames.roleRule)")
        }
        let fields = try entries(
            of: definition.value, path: definition.path, allowedKeys: ["admin", "audit", "allow", "record-input"],
            expected: "a role: a mapping with admin, audit and/or allow (and record-input)")
        var isAdmin = false
        var readsAudit = false
        var recordsInput = true
        var rules: [Rule] = []
        for field in fields {
            switch field.key {
            case "admin":
                isAdmin = try bool(field)
            case "audit":
                readsAudit = try bool(field)
            case "record-input":
                recordsInput = try bool(field)
            default:
                let items = try list(
                    field, example: "[{services: [ssh], nodes: [\"*\"]}]", whenEmpty: "add a rule, or remove allow")
                for (index, item) in items.enumerated() {
                    rules.append(try rule(item, role: definition.key, index: index, path: "\(field.path)[\(index)]"))
                }
            }
        }
        guard isAdmin || readsAudit || !rules.isEmpty else {
            throw failure(
                definition.value, definition.path,
                "grants nothing; give it admin: true, audit: true or an allow list of rules")
        }
        return Role(
            name: definition.key, isAdmin: isAdmin, readsAudit: readsAudit, recordsInput: recordsInput, rules: rules)
    }

    private func rule(_ node: Node, role: String, index: Int, path: String) throws(PolicyError) -> Rule {
        let fields = try entries(
            of: node, path: path, allowedKeys: ["services", "nodes", "labels", "kubernetes"],
            expected: "a rule: a mapping with services and nodes and/or labels")
        var services: Rule.Services?
        var nodes: [NodePattern]?
        var labels: [Rule.Label]?
        var kubernetesGroups: [String]?
        for field in fields {
            switch field.key {
            case "services": services = try self.services(field)
            case "nodes": nodes = try self.nodes(field)
            case "kubernetes": kubernetesGroups = try kubernetes(field)
            default: labels = try self.labels(field)
            }
        }
        // A rule with only a kubernetes mapping grants the kubernetes service alone.
        guard let services = services ?? kubernetesGroups.map({ _ in .only([]) }) else {
            throw failure(
                node, path,
                "services is missing; list what this rule allows, e.g. services: [ssh], or [\"*\"] for every service")
        }
        guard nodes != nil || labels != nil else {
            throw failure(
                node, path,
                "needs nodes or labels (or both), so that a forgotten key cannot grant every node; write nodes: [\"*\"] to mean every node"
            )
        }
        return Rule(
            reference: "\(role).allow[\(index)]", role: role, services: services, nodes: nodes, labels: labels ?? [],
            kubernetesGroups: kubernetesGroups)
    }

    /// `kubernetes: {groups: [edge-viewers]}`: the groups an operator is impersonated with on the
    /// nodes the rule covers (`docs/KUBERNETES.md`).
    private func kubernetes(_ field: Entry) throws(PolicyError) -> [String] {
        let keys = try entries(
            of: field.value, path: field.path, allowedKeys: ["groups"],
            expected: "a mapping like {groups: [edge-viewers]}")
        guard let groupsField = keys.first else {
            throw failure(field.value, field.path, "groups is missing; write kubernetes: {groups: [edge-viewers]}")
        }
        var groups: [String] = []
        for (index, item) in try list(
            groupsField, example: "[edge-viewers]",
            whenEmpty: "list at least one Kubernetes group, or remove kubernetes"
        ).enumerated() {
            let path = "\(groupsField.path)[\(index)]"
            let group = try scalar(item, path: path, what: "a Kubernetes group name")
            guard PolicyNames.isKubernetesGroup(group) else {
                throw failure(item, path, "invalid Kubernetes group \"\(group)\": \(PolicyNames.kubernetesGroupRule)")
            }
            if !groups.contains(group) { groups.append(group) }
        }
        return groups
    }

    private func services(_ field: Entry) throws(PolicyError) -> Rule.Services {
        var names: [String] = []
        var everyService = false
        for (index, item) in try list(
            field, example: "[ssh, logs]", whenEmpty: "list at least one service, or \"*\" for every service"
        ).enumerated() {
            let path = "\(field.path)[\(index)]"
            let name = try scalar(item, path: path, what: "a service name")
            if name == "*" {
                everyService = true
            } else if name == Policy.kubernetesService {
                throw failure(
                    item, path,
                    "kubernetes is granted by a kubernetes: {groups: [...]} mapping on the rule, which says as whom; remove it from services"
                )
            } else if PolicyNames.isDNSLabel(name) {
                names.append(name)
            } else {
                throw failure(item, path, "invalid service name \"\(name)\": \(PolicyNames.serviceRule)")
            }
        }
        return everyService ? .any : .only(names)
    }

    private func nodes(_ field: Entry) throws(PolicyError) -> [NodePattern] {
        var patterns: [NodePattern] = []
        for (index, item) in try list(
            field, example: "[\"plant-a-*\", node-17]", whenEmpty: "list at least one pattern, or \"*\" for every node"
        ).enumerated() {
            let path = "\(field.path)[\(index)]"
            let pattern = try scalar(item, path: path, what: "a node name pattern")
            guard PolicyNames.isNodePattern(pattern) else {
                throw failure(item, path, "invalid node pattern \"\(pattern)\": \(PolicyNames.nodePatternRule)")
            }
            patterns.append(NodePattern(pattern))
        }
        return patterns
    }

    private func labels(_ field: Entry) throws(PolicyError) -> [Rule.Label] {
        let pairs = try entries(
            of: field.value, path: field.path, allowedKeys: nil,
            expected: "a mapping of label: value, like {site: plant-a}")
        guard !pairs.isEmpty else {
            throw failure(field.value, field.path, "is empty; give at least one label: value, or remove labels")
        }
        var labels: [Rule.Label] = []
        for pair in pairs {
            guard PolicyNames.isLabelKey(pair.key) else {
                throw failure(pair.keyNode, pair.path, "invalid label key \"\(pair.key)\": \(PolicyNames.labelKeyRule)")
            }
            let value = try scalar(pair.value, path: pair.path, what: "a label value")
            if value == "*" {
                labels.append(Rule.Label(key: pair.key, value: nil))
            } else if PolicyNames.isLabelValue(value) {
                labels.append(Rule.Label(key: pair.key, value: value))
            } else {
                throw failure(pair.value, pair.path, "invalid label value \"\(value)\": \(PolicyNames.labelValueRule)")
            }
        }
        return labels
    }

    // MARK: - Strict YAML shapes

    /// The entries of a mapping. `allowedKeys` nil means any key (role names, label keys);
    /// `path` nil means the top level.
    private func entries(of node: Node, path: String?, allowedKeys: [String]?, expected: String) throws(PolicyError)
        -> [Entry]
    {
        guard case .mapping(let mapping) = node else {
            throw failure(node, path ?? "top level", "expected \(expected), not \(shape(node))")
        }
        var entries: [Entry] = []
        var firstLine: [String: Int] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode, !isNull(keyNode) else {
                throw failure(keyNode, path ?? "top level", "keys must be plain names, not \(shape(keyNode))")
            }
            let key = scalar.string
            let keyPath = path.map { "\($0).\(key)" } ?? key
            let line = keyNode.mark?.line ?? 0
            if let allowedKeys, !allowedKeys.contains(key) {
                throw failure(keyNode, keyPath, "unknown key; allowed here: \(allowedKeys.joined(separator: ", "))")
            }
            if let first = firstLine[key] {
                throw failure(keyNode, keyPath, "appears twice (first at line \(first)); keep one")
            }
            if isNull(value) {
                throw failure(keyNode, keyPath, "has no value; give one or remove the key")
            }
            firstLine[key] = line
            entries.append(Entry(key: key, keyNode: keyNode, value: value, path: keyPath))
        }
        return entries
    }

    /// A non-empty list: an empty one would silently grant nothing or, for `nodes`, look like
    /// a restriction that is not there. `whenEmpty` is the fix to suggest.
    private func list(_ field: Entry, example: String, whenEmpty: String) throws(PolicyError) -> [Node] {
        guard case .sequence(let sequence) = field.value else {
            throw failure(field.value, field.path, "expected a list like \(example), not \(shape(field.value))")
        }
        guard !sequence.isEmpty else {
            throw failure(field.value, field.path, "is empty; \(whenEmpty)")
        }
        return Array(sequence)
    }

    private func scalar(_ node: Node, path: String, what: String) throws(PolicyError) -> String {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            throw failure(node, path, "expected \(what), not \(shape(node))")
        }
        return scalar.string
    }

    /// Only unquoted `true` and `false`: YAML 1.1's yes/no/on/off are too easy to misread.
    private func bool(_ field: Entry) throws(PolicyError) -> Bool {
        guard case .scalar(let scalar) = field.value, scalar.style == .plain, ["true", "false"].contains(scalar.string)
        else {
            throw failure(field.value, field.path, "must be true or false (unquoted), not \(shape(field.value))")
        }
        return scalar.string == "true"
    }

    private func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func shape(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): return isNull(node) ? "nothing" : "the value \"\(scalar.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    private func failure(_ node: Node, _ path: String, _ problem: String) -> PolicyError {
        let place = node.mark.map { "\(source):\($0.line)" } ?? source
        return PolicyError("\(place): \(path): \(problem)")
    }

    private func yamlError(_ error: any Error) -> PolicyError {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                .composer(_, let problem, let mark, _):
                return PolicyError(
                    "\(source):\(mark.line): not valid YAML: \(problem) (column \(mark.column)); fix the syntax there")
            default:
                break
            }
        }
        return PolicyError("\(source): not valid YAML: \(oneLine(error))")
    }
}
