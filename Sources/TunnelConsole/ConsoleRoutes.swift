import Foundation
import TunnelAudit
import TunnelHTTP
import TunnelTLS

/// What the console needs from the command that starts it: recording a read with the gateway
/// (through its admin socket), and writing an evidence bundle (`tunnel audit export`'s code).
public struct ConsoleServices {
    public var recordRead: (String) throws -> Void
    public var exportBundle: (_ directory: String, _ from: Date, _ until: Date, _ out: String) throws -> Void

    public init(
        recordRead: @escaping (String) throws -> Void,
        exportBundle: @escaping (_ directory: String, _ from: Date, _ until: Date, _ out: String) throws -> Void
    ) {
        self.recordRead = recordRead
        self.exportBundle = exportBundle
    }
}

/// Maps a request path to a page, an asset or an export. Everything here reads; nothing writes
/// the log.
struct ConsoleRoutes {
    let index: AuditIndex
    let sessions: SessionsPage
    let details: DetailPages
    let services: ConsoleServices
    let xterm: Result<(script: [UInt8], stylesheet: [UInt8]), XtermMissing>
    /// The largest recording the console serves; the gateway caps recordings well below it.
    static let maxRecordingBytes = 256 << 20

    init(index: AuditIndex, report: AuditReport, services: ConsoleServices) {
        self.index = index
        let banner = Banner(report: report, index: index)
        sessions = SessionsPage(index: index)
        details = DetailPages(index: index, banner: banner, recordingChecks: RecordingCheck.all(in: index))
        self.services = services
        xterm = XtermBundle.build()
    }

    func respond(_ target: RequestTarget) -> Response {
        switch target.path {
        case "/", "/sessions": return .html(sessions.render(target, banner: details.banner))
        case "/nodes": return .html(details.nodes())
        case "/verification": return .html(details.verification())
        case "/node":
            return found(
                details.node(target["name"] ?? "", page: max(1, Int(target["page"] ?? "1") ?? 1)),
                "no records of node \(target["name"] ?? "")")
        case "/stream": return found(details.stream(target["id"] ?? ""), "no stream \(target["id"] ?? "")")
        case "/record":
            return found(
                details.record(file: Int(target["file"] ?? "") ?? -1, line: Int(target["line"] ?? "") ?? -1),
                "no such record")
        case "/recording": return recording(target["id"] ?? "")
        case "/sessions.csv", "/sessions.jsonl": return export(target, csv: target.path.hasSuffix(".csv"))
        case "/evidence.tar": return evidence(target)
        case "/assets/console.css":
            return Response(status: 200, contentType: "text/css; charset=utf-8", body: Array(Assets.stylesheet.utf8))
        case "/assets/player.js":
            return Response(status: 200, contentType: "text/javascript; charset=utf-8", body: Array(Assets.player.utf8))
        case "/assets/xterm.js", "/assets/xterm.css":
            switch xterm {
            case .success(let bundle):
                return target.path.hasSuffix(".js")
                    ? Response(status: 200, contentType: "text/javascript; charset=utf-8", body: bundle.script)
                    : Response(status: 200, contentType: "text/css; charset=utf-8", body: bundle.stylesheet)
            case .failure(let missing): return .text(missing.message, status: 404)
            }
        default: return .text("404 Not Found: \(target.path)", status: 404)
        }
    }

    private func found(_ page: String?, _ missing: String) -> Response {
        page.map { .html($0) }
            ?? .html(
                HTML.page(title: "Not found", banner: details.banner.html, body: "<p>\(HTML.escape(missing)).</p>"),
                status: 404)
    }

    private func recording(_ id: String) -> Response {
        guard let check = details.recordingChecks[id],
            let bytes = try? DurableFile.read(path: check.path, limit: Self.maxRecordingBytes)
        else {
            return .text("no recording of stream \(id)", status: 404)
        }
        return Response(status: 200, contentType: "application/x-asciicast", body: bytes)
    }

    /// The filtered view as CSV (one row per stream, as the table shows it) or JSON Lines (one
    /// object per stream holding its open and close records exactly as stored).
    private func export(_ target: RequestTarget, csv: Bool) -> Response {
        let filter = SessionFilter(target)
        guard case .success(let rows) = filter.apply(to: index) else {
            return .text("the filter's time is not readable", status: 400)
        }
        do {
            try services.recordRead("console export \(csv ? "csv" : "jsonl") of \(index.directory) \(filter.query)")
        } catch {
            return .text("\(error)", status: 503)
        }
        var out = ""
        if csv { out = "time,stream,operator,roles,node,service,outcome,duration_ms,bytes_to_node,bytes_from_node\r\n" }
        let names = index.names
        for number in rows {
            let row = index.streams[number]
            if csv {
                out +=
                    [
                        LogTime.iso(row.timeMs), row.stream, names[row.operatorName], names[row.roles], names[row.node],
                        names[row.service], names[row.outcome],
                        "\(row.durationMs)", "\(row.bytesToNode)", "\(row.bytesFromNode)",
                    ].map(Self.csvField).joined(separator: ",") + "\r\n"
            } else {
                let close = row.close >= 0 ? index.rawLine(Int(row.close)) : "null"
                out +=
                    "{\"stream\":\(Self.jsonString(row.stream)),\"open\":\(index.rawLine(Int(row.open))),\"close\":\(close)}\n"
            }
        }
        let name = csv ? "sessions.csv" : "sessions.jsonl"
        return Response(
            status: 200, contentType: csv ? "text/csv; charset=utf-8" : "application/jsonl", body: Array(out.utf8),
            headers: [Response.attachment(name)])
    }

    /// `tunnel audit export` of the filter's time range (the whole log without one).
    private func evidence(_ target: RequestTarget) -> Response {
        guard case .success(let (low, high)) = SessionFilter(target).bounds(), let range = index.timeRange else {
            return .text("the filter's time is not readable, or the log is empty", status: 400)
        }
        let from = Date(timeIntervalSince1970: Double(low ?? range.first) / 1000)
        let until = Date(timeIntervalSince1970: Double(high ?? range.last) / 1000)
        let out = NSTemporaryDirectory() + "tunnel-console-\(ConsoleAuth.randomHex(bytes: 8)).tar"
        defer { try? FileManager.default.removeItem(atPath: out) }
        do {
            try services.exportBundle(index.directory, from, until, out)
            let bytes = try DurableFile.read(path: out, limit: 4 << 30)
            return Response(
                status: 200, contentType: "application/x-tar", body: bytes,
                headers: [Response.attachment("evidence.tar")])
        } catch {
            return .text("cannot write the evidence bundle: \(error)", status: 500)
        }
    }

    /// Quotes every field; a leading = + - @ gets a ' so a spreadsheet does not run it as a formula.
    static func csvField(_ text: String) -> String {
        let safe = text.first.map { "=+-@\t\r".contains($0) } == true ? "'" + text : text
        return "\"" + safe.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func jsonString(_ text: String) -> String {
        String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }
}
