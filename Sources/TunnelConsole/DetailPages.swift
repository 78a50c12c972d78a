import TunnelAudit

/// The pages about one thing: the node list and a node's timeline, a stream, a record, and the
/// verification report.
struct DetailPages {
    let index: AuditIndex
    let banner: Banner
    /// Whether each recording's SHA-256 matches its close record, by stream id (checked at start).
    let recordingChecks: [String: RecordingCheck]

    func nodes() -> String {
        let names = index.names
        var streamCounts: [Int32: Int] = [:]
        for row in index.streams { streamCounts[row.node, default: 0] += 1 }
        var html =
            "<table id=\"nodes\"><thead>" + HTML.row(["Node", "Records", "Streams", "Last record (UTC)"], header: true)
            + "</thead><tbody>"
        for name in index.nodeNames {
            guard let code = names.lookup(name), let records = index.nodeRecords[code] else { continue }
            let last = records.last.map { LogTime.text(index.records[Int($0)].timeMs) } ?? ""
            html += HTML.row([
                HTML.link("/node?name=" + RequestTarget.encode(name), name), "\(records.count)",
                "\(streamCounts[code] ?? 0)", HTML.escape(last),
            ])
        }
        return HTML.page(title: "Nodes", banner: banner.html, body: html + "</tbody></table>")
    }

    /// Everything recorded about one node, in log order: connects, disconnects with their
    /// reason, enrollments, renewals, revocations, and its streams opened, denied and closed.
    /// Timeline rows per page: each row reads its record from disk again.
    static let timelinePageSize = 500

    func node(_ name: String, page: Int) -> String? {
        guard let code = index.names.lookup(name), let records = index.nodeRecords[code] else { return nil }
        var html =
            "<p>\(records.count) record(s). "
            + HTML.link("/sessions?node=" + RequestTarget.encode(name), "Sessions on this node") + "</p>"
        html +=
            "<table id=\"timeline\"><thead>" + HTML.row(["Time (UTC)", "Seq", "Event", "Detail"], header: true)
            + "</thead><tbody>"
        for number in records.dropFirst((page - 1) * Self.timelinePageSize).prefix(Self.timelinePageSize).map(Int.init)
        {
            let record = index.records[number]
            let fields = index.fields(of: number)
            let type = index.names[record.type]
            html +=
                "<tr class=\"event-\(HTML.escape(type))\">"
                + [
                    HTML.escape(LogTime.text(record.timeMs)),
                    HTML.link("/record?file=\(record.file)&line=\(record.line)", "\(record.seq)"),
                    HTML.escape(type), Self.detail(type: type, fields),
                ].map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        html +=
            "</tbody></table>"
            + Pager.links(
                count: records.count, pageSize: Self.timelinePageSize, page: page,
                base: "/node?name=" + RequestTarget.encode(name) + "&")
        return HTML.page(title: "Node \(name)", banner: banner.html, body: html)
    }

    /// The few fields that say what a timeline event was.
    static func detail(type: String, _ fields: [String: AuditValue]) -> String {
        let keys = ["outcome", "reason", "operator", "service", "stream", "epoch", "token", "not_after", "action"]
        return keys.compactMap { key -> String? in
            guard let value = fields[key] else { return nil }
            if key == "stream" { return HTML.link("/stream?id=" + RequestTarget.encode(value.text), value.text) }
            let text = "\(key)=\(value.text)"
            return key == "outcome"
                ? "<span class=\"outcome \(SessionsPage.outcomeClass(value.text))\">\(HTML.escape(text))</span>"
                : HTML.escape(text)
        }.joined(separator: " ")
    }

    func stream(_ id: String) -> String? {
        guard let row = index.stream(id) else { return nil }
        let open = index.fields(of: Int(row.open))
        var html = ""
        if let rule = open["rule"] {
            html +=
                "<p class=\"rule\">Allowed by policy rule <code>\(HTML.escape(rule.text))</code> (policy version \(HTML.escape(open["policy_version"]?.text ?? "?"))).</p>"
        } else if let reason = open["reason"] {
            html += "<p class=\"rule\">Refused: \(HTML.escape(reason.text))</p>"
        }
        html += section("Open record", number: Int(row.open))
        if row.close >= 0 {
            html += section("Close record", number: Int(row.close))
        } else {
            html += "<p>No close record: the stream was still open when the log ended.</p>"
        }
        if let check = recordingChecks[id] { html += PlayerSection.html(stream: id, check: check) }
        let player = recordingChecks[id] != nil
        return HTML.page(
            title: "Stream \(id)", banner: banner.html, body: html,
            stylesheets: player ? ["/assets/xterm.css"] : [],
            scripts: player ? ["/assets/xterm.js", "/assets/player.js"] : [])
    }

    /// One record's fields with links to its neighbours in the chain.
    private func section(_ title: String, number: Int) -> String {
        let record = index.records[number]
        return "<h2>\(title) · " + HTML.link("/record?file=\(record.file)&line=\(record.line)", "seq \(record.seq)")
            + "</h2>"
            + fieldTable(number) + neighbours(number)
    }

    private func fieldTable(_ number: Int) -> String {
        let fields = index.fields(of: number)
        guard !fields.isEmpty else { return "<pre class=\"raw\">\(HTML.escape(index.rawLine(number)))</pre>" }
        var html = "<table class=\"fields\"><tbody>"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            html += HTML.row([HTML.escape(key), HTML.escape(value.text)])
        }
        return html + "</tbody></table>"
    }

    private func neighbours(_ number: Int) -> String {
        var links: [String] = []
        for (label, other) in [("← previous record", number - 1), ("next record →", number + 1)]
        where index.records.indices.contains(other) {
            let record = index.records[other]
            links.append(
                HTML.link(
                    "/record?file=\(record.file)&line=\(record.line)",
                    "\(label) (seq \(record.seq), \(index.names[record.type]))"))
        }
        return "<p class=\"neighbours\">" + links.joined(separator: " · ") + "</p>"
    }

    func record(file: Int, line: Int) -> String? {
        guard let number = index.record(file: file, line: line) else { return nil }
        let record = index.records[number]
        let name = index.fileName(record)
        var html =
            "<p>\(HTML.escape(name)), line \(line), seq \(record.seq), type \(HTML.escape(index.names[record.type])).</p>"
        if banner.isBad(number) {
            html +=
                "<p class=\"bad-record\" role=\"alert\">This is the first record that fails verification: \(HTML.escape(banner.report.problem?.message ?? "")).</p>"
        }
        html += fieldTable(number) + neighbours(number)
        html += "<h2>As stored</h2><pre class=\"raw\">\(HTML.escape(index.rawLine(number)))</pre>"
        return HTML.page(title: "Record \(record.seq)", banner: banner.html, body: html)
    }

    func verification() -> String {
        let report = banner.report
        var html = "<table class=\"fields\"><tbody>"
        html += HTML.row(["Result", report.isValid ? "verified" : "<strong>broken</strong>"])
        html += HTML.row([
            "Segments",
            HTML.escape(report.files.map { String($0.split(separator: "/").last ?? "") }.joined(separator: ", ")),
        ])
        html += HTML.row(["Records", "\(report.records)"]) + HTML.row(["Signed checkpoints", "\(report.checkpoints)"])
        html +=
            HTML.row(["Key id", "<code>\(HTML.escape(report.keyID))</code>"])
            + HTML.row(["Recoveries after a crash", "\(report.recoveries)"])
        html +=
            HTML.row(["Records after the last checkpoint", "\(report.unsignedTail)"])
            + HTML.row(["Ends with a clean close", report.closedCleanly ? "yes" : "no"])
        html +=
            "</tbody></table><p>Compare the key id with one taken from somewhere other than the machine being audited (docs/AUDIT.md §2). "
        html +=
            "The same check on the command line: <code>tunnel audit verify \(HTML.escape(index.directory))</code>.</p>"
        return HTML.page(title: "Verification", banner: banner.html, body: html)
    }
}
