import Logging
import Multiplex
import TunnelIO
import TunnelRuntime

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Why a log read was refused or a log source is invalid: a sentence for the operator, or for
/// whoever wrote the client's configuration.
public struct LogRefusal: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where one named log source of the client's configuration reads from.
public enum LogSource: Sendable, Equatable {
    /// A file, or a glob(7) pattern of files: absolute, normalized (`LogPaths.normalize`).
    case files(String)
    /// A systemd unit, read through journalctl.
    case journald(unit: String)

    static let journaldPrefix = "journald:"

    /// Parses a source as configured: `/var/log/syslog`, `/var/log/app/*.log` or `journald:k3s`.
    public static func parse(_ text: String) throws(LogRefusal) -> LogSource {
        if text.hasPrefix(journaldPrefix) {
            let unit = String(text.dropFirst(journaldPrefix.count))
            // systemd's unit name characters; never a leading '-', so it cannot read as an option.
            let allowed = unit.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || Array(":_.@-\\".utf8).contains(byte)
            }
            guard !unit.isEmpty, unit.utf8.count <= 256, allowed, !unit.hasPrefix("-") else {
                throw LogRefusal("\"\(text)\" does not name a systemd unit (e.g. journald:k3s or journald:k3s.service)")
            }
            return .journald(unit: unit)
        }
        guard text.hasPrefix("/") else {
            throw LogRefusal(
                "\"\(text)\" is neither an absolute file path or glob nor journald:UNIT (e.g. /var/log/syslog, /var/log/app/*.log, journald:k3s)"
            )
        }
        guard !text.hasSuffix("/") else {
            throw LogRefusal("\"\(text)\" names a directory; name its files (e.g. \(text)*.log)")
        }
        guard !text.utf8.contains(0), !text.contains("\n") else {
            throw LogRefusal("\"\(text)\" contains a control character")
        }
        return .files(LogPaths.normalize(text))
    }

    /// The source as it could be configured again.
    public var text: String {
        switch self {
        case .files(let pattern): pattern
        case .journald(let unit): Self.journaldPrefix + unit
        }
    }
}

/// What `tunnel logs` asks a node's `logs` service for. It travels as the stream's string
/// parameters (which the gateway also writes into the audit trail), read and checked strictly
/// on the node: an unknown parameter is refused rather than ignored.
public struct LogRequest: Sendable, Equatable {
    /// The configured source's name; may be left out when the node has exactly one.
    public var source: String?
    /// How many of the last lines of each file (or of the journal) to send first.
    public var lines: Int
    /// Keep sending what is appended until the stream is reset.
    public var follow: Bool
    /// Only files modified in the last this many seconds (by the node's clock); for journald,
    /// only entries that recent.
    public var sinceSeconds: Int64?
    /// Only lines containing this text.
    public var grep: String?

    public static let defaultLines = 100
    /// Enough for any screen or file an operator wants; the node never holds them in memory.
    public static let maxLines = 1_000_000
    /// Keeps the request well inside the 4 KiB stream-open metadata.
    public static let maxGrepBytes = 1024

    private enum Key {
        static let source = "source"
        static let lines = "lines"
        static let follow = "follow"
        static let since = "since"
        static let grep = "grep"
        static let all = [source, lines, follow, since, grep]
    }

    public init(
        source: String? = nil, lines: Int = defaultLines, follow: Bool = false, sinceSeconds: Int64? = nil,
        grep: String? = nil
    ) {
        self.source = source
        self.lines = lines
        self.follow = follow
        self.sinceSeconds = sinceSeconds
        self.grep = grep
    }

    /// Reads a request from stream parameters, refusing anything malformed.
    public init(parameters: [String: String]) throws(LogRefusal) {
        if let unknown = parameters.keys.sorted().first(where: { !Key.all.contains($0) }) {
            throw LogRefusal("unknown logs parameter \"\(unknown)\" (known: \(Key.all.joined(separator: ", ")))")
        }
        self.init(source: parameters[Key.source], grep: parameters[Key.grep])
        if let text = parameters[Key.lines] {
            guard let lines = Int(text) else { throw LogRefusal("lines: \"\(text)\" is not a whole number") }
            self.lines = lines
        }
        if let text = parameters[Key.follow] {
            guard text == "1" || text == "0" else { throw LogRefusal("follow: \"\(text)\" is not 1 or 0") }
            follow = text == "1"
        }
        if let text = parameters[Key.since] {
            guard let seconds = Int64(text) else { throw LogRefusal("since: \"\(text)\" is not a number of seconds") }
            sinceSeconds = seconds
        }
        try validate()
    }

    /// The parameters that carry this request.
    public var parameters: [String: String] {
        var parameters = [Key.lines: String(lines)]
        if let source { parameters[Key.source] = source }
        if follow { parameters[Key.follow] = "1" }
        if let sinceSeconds { parameters[Key.since] = String(sinceSeconds) }
        if let grep { parameters[Key.grep] = grep }
        return parameters
    }

    /// Checks the ranges, on the operator's side before asking and on the node's side again.
    public func validate() throws(LogRefusal) {
        guard (0...Self.maxLines).contains(lines) else {
            throw LogRefusal("lines: \(lines) is not between 0 and \(Self.maxLines)")
        }
        if let sinceSeconds, !(1...(100 * 365 * 86_400)).contains(sinceSeconds) {
            throw LogRefusal("since: \(sinceSeconds) s is not between a second and a hundred years")
        }
        if let grep, grep.isEmpty || grep.utf8.count > Self.maxGrepBytes || grep.contains("\n") {
            throw LogRefusal("grep: the text must be 1 to \(Self.maxGrepBytes) bytes on one line")
        }
    }
}

/// The client's built-in `logs` service: serves the log sources of its configuration, and
/// nothing else. An operator names a source; the node alone knows the files or unit behind it.
///
/// File sources must lie under the log root: the configuration is checked lexically when it
/// is loaded, and each file again when it is opened, by the real path of the opened descriptor,
/// so a symlink cannot lead a read outside. Loop-confined.
public final class LogService: BuiltInService {
    public static let serviceName = "logs"
    /// How often a followed file source is checked for new lines, rotation and new files.
    static let pollMilliseconds: UInt64 = 250

    public let sources: [String: LogSource]
    public let root: String
    /// The program that reads the journal; tests point it at a stand-in, as this machine may
    /// run no journald.
    var journalctl = "journalctl"

    public init(sources: [String: LogSource], root: String) {
        self.sources = sources
        self.root = root
    }

    public func serve(_ stream: StreamID, on connection: MuxConnection, parameters: [String: String]) {
        do throws(LogRefusal) {
            let request = try LogRequest(parameters: parameters)
            let name = try sourceName(for: request)
            let since = request.sinceSeconds.map { Int64(Date().timeIntervalSince1970) - $0 }
            let filter = LineFilter(request.grep)
            let logger = connection.logger
            switch sources[name]! {
            case .files(let pattern):
                let files = try LogFiles(
                    pattern: pattern, root: root, lines: request.lines, since: since, follow: request.follow,
                    filter: filter, logger: logger)
                try accept(
                    FileLogStream(connection: connection, stream: stream, files: files, follow: request.follow), stream,
                    connection)
            case .journald(let unit):
                var arguments = [
                    journalctl, "--unit=\(unit)", "--lines=\(request.lines)", "--no-pager", "--output=short-iso",
                ]
                if let since { arguments.append("--since=@\(since)") }
                if request.follow { arguments.append("--follow") }
                let journal: JournalLogStream
                do {
                    journal = try JournalLogStream(
                        connection: connection, stream: stream, arguments: arguments, filter: filter)
                } catch {
                    throw LogRefusal("cannot read the journal of \(unit): \(error)")
                }
                try accept(journal, stream, connection)
            }
            logger.info("serving logs", metadata: ["stream.id": "\(stream)", "log.source": "\(name)"])
        } catch {
            connection.logger.notice(
                "log request refused", metadata: ["stream.id": "\(stream)", "reason": "\(error.message)"])
            try? connection.accept(stream, metadata: TunnelProtocol.encode(StreamRefusal(message: error.message)))
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
    }

    /// The configured source the request names, or the only one when it names none.
    private func sourceName(for request: LogRequest) throws(LogRefusal) -> String {
        let names = sources.keys.sorted().joined(separator: ", ")
        guard let name = request.source ?? (sources.count == 1 ? sources.keys.first : nil) else {
            throw LogRefusal("name a log source; this node has: \(names)")
        }
        guard sources[name] != nil else {
            throw LogRefusal("this node has no log source \"\(name)\"; it has: \(names)")
        }
        return name
    }

    private func accept(_ reader: some LogReader, _ stream: StreamID, _ connection: MuxConnection) throws(LogRefusal) {
        do {
            try connection.accept(stream, handler: reader)
        } catch {
            reader.stop()
            throw LogRefusal("cannot accept the stream: \(error)")
        }
        reader.start()
    }
}
