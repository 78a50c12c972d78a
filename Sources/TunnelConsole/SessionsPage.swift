/// The Sessions table: every stream (opened or denied) with its close, filtered by the URL.
struct SessionsPage {
    let index: AuditIndex
    /// Rows per page: a screenful that still loads at once; the filter does the real narrowing.
    static let pageSize = 100

    func render(_ target: RequestTarget, banner: Banner) -> String {
        let filter = SessionFilter(target)
        let page = max(1, Int(target["page"] ?? "1") ?? 1)
        var body = form(filter)
        switch filter.apply(to: index) {
        case .failure(let error):
            body += "<p class=\"error\" role=\"alert\">\(HTML.escape(error.message))</p>"
        case .success(let matches):
            body += summary(matches.count, filter: filter, page: page)
            body += table(matches.dropFirst((page - 1) * Self.pageSize).prefix(Self.pageSize))
            body += Pager.links(
                count: matches.count, pageSize: Self.pageSize, page: page,
                base: "/sessions?" + (filter.query.isEmpty ? "" : filter.query + "&"))
        }
        return HTML.page(title: "Sessions", banner: banner.html, body: body)
    }

    private func form(_ filter: SessionFilter) -> String {
        let names = index.names
        func choices(_ field: String, _ label: String, _ values: Set<Int32>, _ current: String) -> String {
            let options = values.map { names[$0] }.sorted().map { value in
                "<option\(value == current ? " selected" : "")>\(HTML.escape(value))</option>"
            }.joined()
            return
                "<label>\(label) <select name=\"\(field)\" id=\"filter-\(field)\"><option value=\"\">any</option>\(options)</select></label>"
        }
        func text(_ field: String, _ label: String, _ current: String, _ hint: String) -> String {
            "<label>\(label) <input name=\"\(field)\" id=\"filter-\(field)\" value=\"\(HTML.escape(current))\" placeholder=\"\(hint)\"></label>"
        }
        let streams = index.streams
        return """
            <form method="get" action="/sessions" class="filters">
            \(choices("node", "Node", Set(streams.map(\.node)), filter.node))
            \(choices("operator", "Operator", Set(streams.map(\.operatorName)), filter.operatorName))
            \(choices("service", "Service", Set(streams.map(\.service)), filter.service))
            \(choices("outcome", "Outcome", Set(streams.map(\.outcome)), filter.outcome))
            \(text("from", "From", filter.from, "2026-03-01T08:00")) \(text("until", "Until", filter.until, "2026-03-01")) \(text("q", "Text", filter.text, "any field"))
            <button type="submit">Filter</button> <a href="/sessions">clear</a>
            </form>
            """
    }

    private func summary(_ count: Int, filter: SessionFilter, page: Int) -> String {
        let query = filter.query
        let suffix = query.isEmpty ? "" : "?" + query
        return """
            <p class="summary"><span id="match-count">\(count)</span> stream(s) of \(index.streams.count). Export this view: \
            \(HTML.link("/sessions.csv" + suffix, "CSV")) · \(HTML.link("/sessions.jsonl" + suffix, "JSON Lines")) · \
            \(HTML.link("/evidence.tar" + suffix, "evidence bundle (whole segments of the time range)"))</p>
            """
    }

    private func table(_ rows: ArraySlice<Int>) -> String {
        let names = index.names
        var html =
            "<table id=\"sessions\"><thead>"
            + HTML.row(
                [
                    "Time (UTC)", "Operator", "Roles", "Node", "Service", "Outcome", "Duration", "Bytes to node",
                    "Bytes from node", "Stream",
                ], header: true) + "</thead><tbody>\n"
        for number in rows {
            let row = index.streams[number]
            html += HTML.row([
                HTML.escape(LogTime.text(row.timeMs)), HTML.escape(names[row.operatorName]),
                HTML.escape(names[row.roles]),
                HTML.link("/node?name=" + RequestTarget.encode(names[row.node]), names[row.node]),
                HTML.escape(names[row.service]),
                "<span class=\"outcome \(Self.outcomeClass(names[row.outcome]))\">\(HTML.escape(names[row.outcome]))</span>",
                row.durationMs >= 0 ? Self.duration(row.durationMs) : "–",
                row.bytesToNode >= 0 ? "\(row.bytesToNode)" : "–",
                row.bytesFromNode >= 0 ? "\(row.bytesFromNode)" : "–",
                HTML.link("/stream?id=" + RequestTarget.encode(row.stream), row.stream),
            ])
        }
        return html + "</tbody></table>"
    }

    static func outcomeClass(_ outcome: String) -> String {
        switch outcome {
        case "closed", "open": "good"
        case "denied", "unavailable", "refused": "refused"
        default: "bad"
        }
    }

    static func duration(_ milliseconds: Int64) -> String {
        milliseconds < 1000
            ? "\(milliseconds) ms"
            : milliseconds < 60_000
                ? "\(milliseconds / 1000).\(milliseconds % 1000 / 100) s"
                : "\(milliseconds / 60_000) min \(milliseconds % 60_000 / 1000) s"
    }
}

/// "← previous · page N of M · next →" links; `base` ends where `page=N` is appended.
enum Pager {
    static func links(count: Int, pageSize: Int, page: Int, base: String) -> String {
        let pages = max(1, (count + pageSize - 1) / pageSize)
        guard pages > 1 else { return "" }
        var links: [String] = []
        if page > 1 { links.append(HTML.link(base + "page=\(page - 1)", "← previous")) }
        links.append("page \(page) of \(pages)")
        if page < pages { links.append(HTML.link(base + "page=\(page + 1)", "next →")) }
        return "<nav class=\"pager\">" + links.joined(separator: " · ") + "</nav>"
    }
}
