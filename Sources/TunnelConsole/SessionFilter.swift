/// The Sessions view's filter: what the form sends and what the URL carries, so a view can be
/// shared by its address.
struct SessionFilter: Equatable {
    var node = ""
    var operatorName = ""
    var service = ""
    var outcome = ""
    /// `YYYY-MM-DDTHH:MM[:SS]` or with a date only, UTC; empty for no bound.
    var from = ""
    var until = ""
    var text = ""

    static let fields = ["node", "operator", "service", "outcome", "from", "until", "q"]

    init() {}

    init(_ target: RequestTarget) {
        node = target["node"] ?? ""
        operatorName = target["operator"] ?? ""
        service = target["service"] ?? ""
        outcome = target["outcome"] ?? ""
        from = target["from"] ?? ""
        until = target["until"] ?? ""
        text = target["q"] ?? ""
    }

    var values: [String] { [node, operatorName, service, outcome, from, until, text] }

    /// The query string of this filter, without the parameters left empty.
    var query: String {
        zip(Self.fields, values).filter { !$0.1.isEmpty }.map { "\($0.0)=\(RequestTarget.encode($0.1))" }.joined(
            separator: "&")
    }

    /// The time bounds in epoch milliseconds; an unreadable bound is reported, not ignored.
    func bounds() -> Result<(Int64?, Int64?), FilterError> {
        func parse(_ text: String, _ name: String, endOfDay: Bool) -> Result<Int64?, FilterError> {
            guard !text.isEmpty else { return .success(nil) }
            var full = text.replacingOccurrences(of: " ", with: "T")
            if full.count == 10 { full += endOfDay ? "T23:59:59.999" : "T00:00:00" }
            if full.count == 16 { full += endOfDay ? ":59.999" : ":00" }
            guard let value = LogTime.milliseconds(full + (full.count == 19 ? ".000Z" : "Z")) else {
                return .failure(FilterError(message: "\(name) is not a time like 2026-03-01 or 2026-03-01T14:30 (UTC)"))
            }
            return .success(value)
        }
        return parse(from, "from", endOfDay: false).flatMap { low in
            parse(until, "until", endOfDay: true).map { (low, $0) }
        }
    }

    /// The rows that match, in log order.
    func apply(to index: AuditIndex) -> Result<[Int], FilterError> {
        bounds().map { low, high in
            let names = index.names
            // A name that occurs nowhere matches nothing; an empty one matches everything.
            func code(_ text: String) -> Int32?? {
                text.isEmpty ? .some(nil) : names.lookup(text).map { .some($0) } ?? .none
            }
            guard let node = code(node), let user = code(operatorName), let service = code(service),
                let outcome = code(outcome)
            else { return [] }
            let needle = text.lowercased()
            return index.streams.indices.filter { number in
                let row = index.streams[number]
                if let node, row.node != node { return false }
                if let user, row.operatorName != user { return false }
                if let service, row.service != service { return false }
                if let outcome, row.outcome != outcome { return false }
                if let low, row.timeMs < low { return false }
                if let high, row.timeMs > high { return false }
                guard !needle.isEmpty else { return true }
                return [
                    row.stream, names[row.operatorName], names[row.roles], names[row.node], names[row.service],
                    names[row.outcome],
                ]
                .contains { $0.lowercased().contains(needle) }
            }
        }
    }
}

struct FilterError: Error {
    let message: String
}
