import TunnelAudit

/// The verification result shown on every page: the same walk as `tunnel audit verify`, done
/// once when the console starts (the files are read-only to it, so the answer stays true).
struct Banner {
    let report: AuditReport
    let html: String
    /// The index number of the record the banner names, when the log is broken.
    private(set) var badRecord: Int?

    init(report: AuditReport, index: AuditIndex) {
        self.report = report
        guard let problem = report.problem else {
            let range =
                index.timeRange.map { "from \(LogTime.text($0.first)) to \(LogTime.text($0.last)) UTC" } ?? "no records"
            html = """
                <div class="banner verified" id="verification" role="status"><strong>Verified.</strong> \
                \(report.records) records (seq \(report.firstSeq ?? 0)–\(report.lastSeq ?? 0)) in \(report.files.count) segment(s), \
                \(report.checkpoints) signed checkpoint(s), key id <code>\(HTML.escape(report.keyID))</code>, \(range).\
                \(report.unsignedTail > 0 ? " The last \(report.unsignedTail) record(s) are chained but not yet signed." : "")</div>
                """
            return
        }
        let file = problem.file.map { String($0.split(separator: "/").last ?? "") }
        let located = Self.badRecord(problem, file: file, index: index)
        var place =
            located.map {
                "\(index.fileName(index.records[$0])), line \(index.records[$0].line), seq \(index.records[$0].seq)"
            }
            ?? [file, problem.line.map { "line \($0)" }, problem.seq.map { "seq \($0)" }].compactMap { $0 }.joined(
                separator: ", ")
        if let located {
            let record = index.records[located]
            place = HTML.link("/record?file=\(record.file)&line=\(record.line)", place)
        } else {
            place = HTML.escape(place)
        }
        badRecord = located
        html = """
            <div class="banner broken" id="verification" role="alert"><strong>BROKEN:</strong> the first bad record is \
            \(place): \(HTML.escape(problem.message)). Nothing from that record on can be trusted; \
            earlier records are as verified as the last checkpoint before it.</div>
            """
    }

    /// The record at fault. When a record's `prev` does not match, the verifier stops at that
    /// record, but what changed is the line before it (whose hash no longer matches); had the
    /// `prev` itself been edited, the next record would fail instead. So that line is named.
    private static func badRecord(_ problem: AuditProblem, file: String?, index: AuditIndex) -> Int? {
        guard let file, let line = problem.line, let fileNumber = index.files.firstIndex(of: file),
            let number = index.record(file: fileNumber, line: line)
        else { return nil }
        return problem.kind == .prevMismatch && number > 0 ? number - 1 : number
    }

    func isBad(_ number: Int) -> Bool { badRecord == number }
}
