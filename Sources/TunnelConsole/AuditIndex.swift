import Foundation
import TunnelAudit

/// Where one line of the log is, and the few fields every page sorts or links by. The full
/// record stays on disk and is read again (`AuditIndex.fields(of:)`) when a page shows it, so a
/// million-record log costs a few tens of MB, not its size as Swift dictionaries.
struct RecordRef {
    let file: Int32
    /// 1-based, as `tunnel audit verify` names lines.
    let line: Int32
    let offset: Int64
    let length: Int32
    let seq: Int64
    let timeMs: Int64
    let type: Int32
    /// The node the record is about, or -1.
    let node: Int32
}

/// One stream as the Sessions table shows it: its open (or deny) record and its close record.
struct StreamRow {
    let stream: String
    let open: Int32
    var close: Int32 = -1
    let timeMs: Int64
    let operatorName: Int32
    let roles: Int32
    let node: Int32
    let service: Int32
    var outcome: Int32
    var durationMs: Int64 = -1
    var bytesToNode: Int64 = -1
    var bytesFromNode: Int64 = -1
    /// The shell recording's file name and SHA-256 from the close record, for the few that have one.
    var recording: (name: String, sha256: String?)?
}

/// Strings that repeat across records (node, operator, service, type) are kept once.
struct Interner {
    private(set) var strings: [String] = [""]
    private var numbers: [String: Int32] = ["": 0]

    mutating func number(_ text: String) -> Int32 {
        if let known = numbers[text] { return known }
        let next = Int32(strings.count)
        strings.append(text)
        numbers[text] = next
        return next
    }

    func lookup(_ text: String) -> Int32? { numbers[text] }
    subscript(_ number: Int32) -> String { strings[Int(number)] }
}

/// The audit log read once at start: every line's place, the streams, and each node's records.
public final class AuditIndex {
    public let directory: String
    let files: [String]
    private(set) var records: [RecordRef] = []
    private(set) var streams: [StreamRow] = []
    private(set) var names = Interner()
    /// Record numbers per node, in log order.
    private(set) var nodeRecords: [Int32: [Int32]] = [:]
    private var streamByID: [String: Int32] = [:]
    /// The number of each file's first record.
    private var fileStarts: [Int] = []
    /// The largest line the index reads; a longer one is listed as unreadable, not loaded.
    static let maxLineBytes = 1 << 20

    public init(directory: String) throws {
        self.directory = directory
        files = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("audit-") && $0.hasSuffix(".jsonl") }.sorted()
        for (number, name) in files.enumerated() {
            fileStarts.append(records.count)
            try scan(file: Int32(number), path: "\(directory)/\(name)")
        }
    }

    public var recordCount: Int { records.count }
    public var timeRange: (first: Int64, last: Int64)? {
        guard let first = records.first(where: { $0.timeMs > 0 }), let last = records.last(where: { $0.timeMs > 0 })
        else { return nil }
        return (first.timeMs, last.timeMs)
    }
    var nodeNames: [String] { nodeRecords.keys.map { names[$0] }.sorted() }

    func stream(_ id: String) -> StreamRow? { streamByID[id].map { streams[Int($0)] } }
    func record(file: Int, line: Int) -> Int? {
        guard fileStarts.indices.contains(file) else { return nil }
        let index = fileStarts[file] + line - 1
        return records.indices.contains(index) && Int(records[index].file) == file ? index : nil
    }
    func fileName(_ record: RecordRef) -> String { files[Int(record.file)] }

    /// The record's line as it is on disk.
    func rawLine(_ number: Int) -> String {
        let record = records[number]
        guard let handle = FileHandle(forReadingAtPath: "\(directory)/\(files[Int(record.file)])") else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(record.offset))
        return String(decoding: (try? handle.read(upToCount: Int(record.length))) ?? Data(), as: UTF8.self)
    }

    /// The record's fields, parsed again from disk.
    func fields(of number: Int) -> [String: AuditValue] {
        (try? AuditRecord(line: rawLine(number).utf8))?.fields ?? [:]
    }

    private func scan(file: Int32, path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        var offset = 0, line: Int32 = 0
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            while offset < bytes.count {
                let end = bytes[offset...].firstIndex(of: 0x0A) ?? bytes.count
                line += 1
                add(
                    file: file, line: line, offset: offset, bytes: UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
                )
                offset = end + 1
            }
        }
    }

    private func add(file: Int32, line: Int32, offset: Int, bytes: UnsafeRawBufferPointer) {
        let record = bytes.count <= Self.maxLineBytes ? try? AuditRecord(line: bytes) : nil
        let node = record?.event.node.map { names.number($0) } ?? -1
        let number = Int32(records.count)
        let time = record.flatMap { LogTime.milliseconds($0.time) } ?? 0
        records.append(
            RecordRef(
                file: file, line: line, offset: Int64(offset), length: Int32(bytes.count),
                seq: Int64(clamping: record?.seq ?? 0),
                timeMs: time, type: names.number(record?.type ?? "(unreadable line)"), node: node))
        if node >= 0 { nodeRecords[node, default: []].append(number) }
        switch record?.event {
        case .streamOpen(let parties, _):
            addStream(parties, open: number, time: time, node: node, outcome: "open")
        case .streamDeny(let parties, _, let denial):
            addStream(parties, open: number, time: time, node: node, outcome: denial.outcome)
        case .streamClose(let parties, let close):
            guard let row = streamByID[parties.stream].map(Int.init) else { return }
            streams[row].close = number
            streams[row].outcome = names.number(close.outcome.rawValue)
            streams[row].durationMs = close.durationMs ?? -1
            streams[row].bytesToNode = close.bytesToNode ?? -1
            streams[row].bytesFromNode = close.bytesFromNode ?? -1
            if let name = close.recording { streams[row].recording = (name, close.recordingSha256) }
        default: return
        }
    }

    /// A row for a stream that was opened or denied; a request refused before its names were
    /// checked names no stream and gets none.
    private func addStream(_ parties: StreamRequestParties, open: Int32, time: Int64, node: Int32, outcome: String) {
        guard let target = parties.target else { return }
        streamByID[target.stream] = Int32(streams.count)
        streams.append(
            StreamRow(
                stream: target.stream, open: open, timeMs: time, operatorName: names.number(parties.actor.name),
                roles: names.number(parties.actor.roles.joined(separator: ",")),
                node: max(node, 0), service: names.number(target.service), outcome: names.number(outcome)))
    }
}

/// The log's time format, `YYYY-MM-DDTHH:MM:SS.mmmZ` (docs/AUDIT.md §3.2), to and from epoch
/// milliseconds, by hand: a million records through a date formatter take tens of seconds.
enum LogTime {
    static func milliseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard (48...57).contains(bytes[index]) else { return nil }
                value = value * 10 + Int64(bytes[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month)
        else { return nil }
        var millis: Int64 = 0
        if bytes.count >= 24, bytes[19] == 46, let fraction = number(20..<23) { millis = fraction }
        return (days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// RFC 3339 with milliseconds, as the log writes times.
    static func iso(_ milliseconds: Int64) -> String {
        let text = text(milliseconds).replacingOccurrences(of: " ", with: "T")
        let millis = milliseconds % 1000
        return text + "." + String(String(millis + 1000).dropFirst()) + "Z"
    }

    static func text(_ milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String {
            let v = value ?? 0
            return v < 10 ? "0\(v)" : "\(v)"
        }
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }
}
