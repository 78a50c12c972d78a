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
            return "none of your roles (\(uniqued(names).joined(separator: ", "))) is defined in policy \(version); ask an admin to grant one"
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
        return "no rule of your roles (\(roleList)) covers \(node) with \(describe(labels)); "
            + closest(rules, node: node, labels: labels, service: service)
    }

    /// Rules cover the node but none lists the service (a rule with `"*"` would have allowed it).
    private func serviceNotGranted(by rules: [Rule], node: String, service: String) -> String {
        let roles = uniqued(rules.map(\.role))
        let services = uniqued(rules.flatMap { rule -> [String] in
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

    /// A rule as a denial describes it: what it lacks to cover the node, and whether it would
    /// grant the requested service if it did.
    private struct Candidate {
        let rule: Rule
        let lacks: [String]
        let grantsService: Bool

        /// Lower is nearer: rules granting the service first, then the fewest unmet conditions.
        var rank: (Int, Int) { (grantsService ? 0 : 1, lacks.count) }

        var text: String {
            var text = "\(rule.reference) needs \(lacks.joined(separator: " and "))"
            if !grantsService, case .only(let names) = rule.services, !names.isEmpty {
                text += " and grants only \(names.joined(separator: ", "))"
            }
            return text
        }
    }

    /// The rules that come nearest to covering the node, with what each lacks.
    private func closest(_ rules: [Rule], node: String, labels: [String: String], service: String) -> String {
        let candidates = rules.map {
            Candidate(rule: $0, lacks: unmetConditions(of: $0, node: node, labels: labels), grantsService: $0.grants(service))
        }
        let best = candidates.map(\.rank).min { $0 < $1 }!  // `rules` is not empty: the caller checked
        let nearest = candidates.filter { $0.rank == best }
        var parts = nearest.prefix(Self.closestRulesShown).map(\.text)
        let more = nearest.count - Self.closestRulesShown
        if more > 0 {
            parts.append(more == 1 ? "1 more rule comes as close" : "\(more) more rules come as close")
        }
        return parts.joined(separator: "; ")
    }

    private func unmetConditions(of rule: Rule, node: String, labels: [String: String]) -> [String] {
        var lacks: [String] = []
        if let patterns = rule.nodes, !rule.matchesName(node) {
            lacks.append("a node name matching \(patterns.map(\.text).joined(separator: " or "))")
        }
        for label in rule.labels where !label.matches(labels) {
            lacks.append(label.value.map { "\(label.key)=\($0)" } ?? "label \(label.key) set")
        }
        return lacks
    }

    private func describe(_ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return "no labels" }
        return "labels " + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }

    private func uniqued(_ items: [String]) -> [String] {
        var seen: Set<String> = []
        return items.filter { seen.insert($0).inserted }
    }
}
