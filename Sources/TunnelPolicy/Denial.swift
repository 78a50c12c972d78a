/// The one sentence an operator reads when a stream is refused. Only denials pay for it.
extension Policy {
    /// How many of the closest rules a "no rule covers this node" denial names.
    static let closestRulesShown = 2

    func denialReason(roles names: [String], node: String, labels: [String: String], service: String) -> String {
        let roles = uniqued(names).compactMap { self.roles[$0] }
        guard !roles.isEmpty else {
            if names.isEmpty {
                return "you have no roles, so policy \(version) grants you nothing; ask an admin to grant one"
            }
            return
                "none of your roles (\(uniqued(names).joined(separator: ", "))) is defined in policy \(version); ask an admin to grant one"
        }
        let roleList = roles.map(\.name).joined(separator: ", ")
        let rules = roles.flatMap(\.rules)
        guard !rules.isEmpty else {
            return "your roles (\(roleList)) have no allow rules in policy \(version); ask an admin to grant one"
        }
        let covering = rules.filter { $0.covers(node: node, labels: labels) }
        if !covering.isEmpty {
            return serviceNotGranted(by: covering, node: node, service: service)
        }
        return "no rule of your roles (\(roleList)) covers \(node); " + closest(rules, node: node, service: service)
    }

    /// Rules cover the node but none lists the service (a rule with `"*"` would have allowed it).
    private func serviceNotGranted(by rules: [Rule], node: String, service: String) -> String {
        let roles = uniqued(rules.map(\.role))
        let services = uniqued(
            rules.flatMap { rule -> [String] in
                guard case .only(let names) = rule.services else { return ["every service but kubernetes"] }
                return names + (rule.kubernetesGroups == nil ? [] : [Policy.kubernetesService])
            })
        let who = roles.count == 1 ? "your role \(roles[0])" : "your roles \(roles.joined(separator: ", "))"
        let verb = roles.count == 1 ? "allows" : "allow"
        let which = rules.count == 1 ? "rule" : "rules"
        return "\(who) \(verb) only \(services.joined(separator: ", ")) on \(node) "
            + "(\(which) \(rules.map(\.reference).joined(separator: ", "))); \(service) is not granted"
            + (service == Policy.kubernetesService ? " (only a rule with kubernetes: {groups: [...]} grants it)" : "")
    }

    /// A rule as a denial describes it: what it needs of a node (a matching name, unless the
    /// name already matches, and every label it requires), and whether it would grant the
    /// requested service. Never what the node has: the sentence reads the same whether the
    /// node exists or not, and tells nothing of its labels (docs/POLICY.md, Denials).
    private struct Candidate {
        let rule: Rule
        let needs: [String]
        let grantsService: Bool

        /// Lower is nearer: rules granting the service first, then the fewest conditions.
        var rank: (Int, Int) { (grantsService ? 0 : 1, needs.count) }

        var text: String {
            var text = "\(rule.reference) needs \(needs.joined(separator: " and "))"
            if !grantsService, case .only(let names) = rule.services, !names.isEmpty {
                text += " and grants only \(names.joined(separator: ", "))"
            }
            return text
        }
    }

    /// The rules that come nearest to covering a node of that name, with what each needs.
    private func closest(_ rules: [Rule], node: String, service: String) -> String {
        let candidates = rules.map {
            Candidate(rule: $0, needs: conditions(of: $0, node: node), grantsService: $0.grants(service))
        }
        let best = candidates.map(\.rank).min { $0 < $1 }! // `rules` is not empty: the caller checked
        let nearest = candidates.filter { $0.rank == best }
        var parts = nearest.prefix(Self.closestRulesShown).map(\.text)
        let more = nearest.count - Self.closestRulesShown
        if more > 0 {
            parts.append(more == 1 ? "1 more rule comes as close" : "\(more) more rules come as close")
        }
        return parts.joined(separator: "; ")
    }

    /// The name (which the operator typed, so it tells nothing) and every label of the rule,
    /// met or not: which ones a node meets is what a denial must not reveal.
    private func conditions(of rule: Rule, node: String) -> [String] {
        var needs: [String] = []
        if let patterns = rule.nodes, !rule.matchesName(node) {
            needs.append("a node name matching \(patterns.map(\.text).joined(separator: " or "))")
        }
        for label in rule.labels {
            needs.append(label.value.map { "\(label.key)=\($0)" } ?? "label \(label.key) set")
        }
        return needs
    }

    private func uniqued(_ items: [String]) -> [String] {
        var seen: Set<String> = []
        return items.filter { seen.insert($0).inserted }
    }
}
