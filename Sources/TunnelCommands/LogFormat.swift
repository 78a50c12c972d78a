import Foundation
import Glibc
import Logging
import TunnelText

/// How the long-running commands write their logs to stderr (`log-format`).
public enum LogFormat: String, CaseIterable, Sendable {
    /// Lines for people: `TIME LEVEL LABEL: METADATA [SOURCE] MESSAGE`, what others sent escaped.
    /// Under systemd, whose journal stamps and ranks each line itself, the time gives way to a
    /// syslog priority prefix (`<6>`), which journald reads as the line's priority.
    case text
    /// One JSON object per line with the same fields, for Kubernetes and log shippers.
    case json

    /// Whether stderr is the systemd journal's stream: `JOURNAL_STREAM` names its device and
    /// inode (systemd.exec(5)), which must be stderr's own, or the variable was only inherited.
    static func stderrIsJournal(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }
}

/// Writes log events to stderr as `LogFormat` says, each event with one write(2), so lines from
/// several threads never interleave. Text escapes what peers sent (`InertLogHandler.inert`); JSON
/// is exact, its encoder escapes control characters itself.
struct FormattedLogHandler: LogHandler {
    enum Style: Sendable {
        case json
        /// Text with a syslog priority prefix and no timestamp, for the journal.
        case journal
    }

    let label: String
    let style: Style
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, style: Style) {
        self.label = label
        self.style = style
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line: String
        switch style {
        case .journal:
            line = Self.journalLine(level: event.level, label: label, metadata: merged, source: event.source, message: event.message.description)
        case .json:
            line = Self.jsonLine(time: Date(), level: event.level, label: label, metadata: merged, source: event.source, message: event.message.description)
        }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// sd-daemon(3) priorities: trace and debug are 7, info 6, notice 5, warning 4, error 3, critical 2.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `<6>info tunnel: node.name=dev-node [TunnelGateway] node connected`
    static func journalLine(level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String) -> String {
        let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(InertLogHandler.inert($0.value))" }
        let prefix = "<\(syslogPriority(level))>\(level) \(label):" + (fields.isEmpty ? "" : " " + fields.joined(separator: " "))
        return "\(prefix) [\(source)] \(InertText.escape(message))"
    }

    /// `{"time":"…","level":"info","label":"tunnel","source":"TunnelGateway","message":"…","metadata":{…}}`
    static func jsonLine(time: Date, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String) -> String {
        struct Line: Encodable {
            let time: String
            let level: String
            let label: String
            let source: String
            let message: String
            let metadata: [String: String]
        }
        let stamp = time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        return jsonText(Line(time: stamp, level: level.rawValue, label: label, source: source, message: message,
                             metadata: metadata.mapValues { $0.description }))
    }
}
