import Foundation
import Glibc
import Logging
import Testing

@testable import TunnelCommands

@Suite struct LogFormatTests {
    @Test("journal lines: a syslog priority prefix journald understands, no timestamp, what peers sent escaped")
    func journalLines() {
        let line = FormattedLogHandler.journalLine(
            level: .warning, label: "tunnel", metadata: ["node.name": "evil\n\u{1b}[2J", "a": "1"],
            source: "TunnelGateway",
            message: "node refused\r")
        #expect(line.hasPrefix("<4>warning tunnel: a=1 node.name=evil"))
        #expect(line.hasSuffix("[TunnelGateway] node refused\\r"))
        #expect(!line.contains("\n") && !line.contains("\u{1b}") && !line.contains("\r"))
        #expect(!line.contains(String(Calendar.current.component(.year, from: Date()))))
        #expect(Logger.Level.allCases.map(FormattedLogHandler.syslogPriority) == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test("JSON lines: one object per line with the text format's fields, exact")
    func jsonLines() throws {
        let line = FormattedLogHandler.jsonLine(
            time: Date(timeIntervalSince1970: 1_764_890_000.25), level: .info, label: "tunnel",
            metadata: ["node.name": "dev\nnode", "stream.id": "3"], source: "TunnelClient", message: "shell started")
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2025-12-04T23:13:20.250Z")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "tunnel")
        #expect(object["source"] as? String == "TunnelClient")
        #expect(object["message"] as? String == "shell started")
        #expect(object["metadata"] as? [String: String] == ["node.name": "dev\nnode", "stream.id": "3"])
    }

    @Test("JOURNAL_STREAM counts only when it names stderr itself")
    func journalStream() {
        var status = stat()
        #expect(fstat(STDERR_FILENO, &status) == 0)
        #expect(LogFormat.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"]))
        #expect(!LogFormat.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino &+ 1)"]))
        #expect(!LogFormat.stderrIsJournal(environment: ["JOURNAL_STREAM": "garbage"]))
        #expect(!LogFormat.stderrIsJournal(environment: [:]))
    }
}

@Suite struct ProgressLineTests {
    @Test("what is done, of how much, the rate and the time left")
    func text() {
        #expect(
            ProgressLine.text(label: "verifying", done: 12 << 20, total: 48 << 20, unit: .bytes, elapsed: 2)
                == "verifying: 12.0 MiB of 48.0 MiB, 6.0 MiB/s, 6 s left")
        #expect(
            ProgressLine.text(label: "downloading", done: 1536, total: nil, unit: .bytes, elapsed: 1)
                == "downloading: 1.5 KiB, 1.5 KiB/s")
        // Too early for a rate that means anything.
        #expect(
            ProgressLine.text(label: "reading", done: 10, total: 100, unit: .records, elapsed: 0.1)
                == "reading: 10 records of 100 records")
        #expect(ProgressLine.amount(1023, .bytes) == "1023 B")
    }
}
