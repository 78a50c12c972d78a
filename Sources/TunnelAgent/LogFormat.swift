import Glibc
import Logging
import TunnelText

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

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
    package static func stderrIsJournal(environment: [String: String] = processEnvironment()) -> Bool {
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
package struct FormattedLogHandler: LogHandler {
    package enum Style: Sendable {
        case json
        /// Text with a syslog priority prefix and no timestamp, for the journal.
        case journal
    }

    package let label: String
    package let style: Style
    package var logLevel: Logger.Level = .info
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?

    init(label: String, style: Style) {
        self.label = label
        self.style = style
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line: String
        switch style {
        case .journal:
            line = Self.journalLine(
                level: event.level, label: label, metadata: merged, source: event.source,
                message: event.message.description)
        case .json:
            line = Self.jsonLine(
                time: Date(), level: event.level, label: label, metadata: merged, source: event.source,
                message: event.message.description)
        }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// sd-daemon(3) priorities: trace and debug are 7, info 6, notice 5, warning 4, error 3, critical 2.
    package static func syslogPriority(_ level: Logger.Level) -> Int {
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
    package static func journalLine(
        level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String
    ) -> String {
        let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(InertLogHandler.inert($0.value))" }
        let prefix =
            "<\(syslogPriority(level))>\(level) \(label):" + (fields.isEmpty ? "" : " " + fields.joined(separator: " "))
        return "\(prefix) [\(source)] \(InertText.escape(message))"
    }

    /// `{"time":"…","level":"info","label":"tunnel","source":"TunnelGateway","message":"…","metadata":{…}}`
    package static func jsonLine(
        time: Date, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String
    ) -> String {
        struct Line: Encodable {
            let time: String
            let level: String
            let label: String
            let source: String
            let message: String
            let metadata: [String: String]
        }
        let stamp = time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        return jsonText(
            Line(
                time: stamp, level: level.rawValue, label: label, source: source, message: message,
                metadata: metadata.mapValues { $0.description }))
    }
}

/// Process-wide logging for the long-running commands.
public enum TunnelLogging {
    /// Installs a stderr log handler at `level` in `format` (text under systemd's journal gets
    /// priority prefixes instead of timestamps) and returns the root logger.
    /// Call exactly once per process (swift-log refuses a second bootstrap), from a command's `run()`.
    public static func bootstrap(level: Logger.Level, format: LogFormat = .text) -> Logger {
        let journal = format == .text && LogFormat.stderrIsJournal()
        LoggingSystem.bootstrap { label -> any LogHandler in
            if format == .json || journal {
                var handler = FormattedLogHandler(label: label, style: journal ? .journal : .json)
                handler.logLevel = level
                return handler
            }
            var handler = InertLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "tunnel")
        logger.logLevel = level
        return logger
    }
}

/// Log lines quote what peers sent (a refused name, a GOAWAY reason, a node's version), so the
/// message and every metadata value go through `InertText` before the stream handler prints
/// them: one event stays one line and moves no cursor.
package struct InertLogHandler: LogHandler {
    private var inner: StreamLogHandler

    package init(_ inner: StreamLogHandler) {
        self.inner = inner
    }

    package var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    package var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    package var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    package func log(event: LogEvent) {
        var event = event
        event.message = "\(InertText.escape(event.message.description))"
        event.metadata = event.metadata?.mapValues(Self.inert)
        inner.log(event: event)
    }

    package static func inert(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(InertText.escape(text))
        case .stringConvertible(let item): .string(InertText.escape(item.description))
        case .dictionary(let map): .dictionary(map.mapValues(inert))
        case .array(let items): .array(items.map(inert))
        @unknown default: .string(InertText.escape(value.description))
        }
    }
}
