import Foundation
import Glibc

/// A progress line on stderr for long work (`audit verify`, `audit export`, a large `logs`
/// download): what is done, the rate and the time left, redrawn in place at most ten times a
/// second, and erased at the end. Silent unless stderr is a terminal, so pipes and log files
/// never see it.
final class ProgressLine {
    enum Unit {
        case bytes
        case records
    }

    private let label: String
    private let total: Int64?
    private let unit: Unit
    private let enabled: Bool
    private let started = Date()
    private var lastDrawn = Date.distantPast
    private var drawn = false

    init(_ label: String, total: Int64?, unit: Unit, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
    }

    func update(_ done: Int64) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDrawn) >= 0.1 else { return }
        lastDrawn = now
        drawn = true
        emit(
            "\r\u{1b}[K"
                + Self.text(label: label, done: done, total: total, unit: unit, elapsed: now.timeIntervalSince(started))
        )
    }

    /// Erases the line, so whatever is printed next starts clean.
    func finish() {
        guard enabled, drawn else { return }
        drawn = false
        emit("\r\u{1b}[K")
    }

    private func emit(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// `verifying: 12.0 MiB of 48.0 MiB, 9.5 MiB/s, 4 s left`
    static func text(label: String, done: Int64, total: Int64?, unit: Unit, elapsed: TimeInterval) -> String {
        var text = "\(label): \(amount(done, unit))"
        if let total { text += " of \(amount(total, unit))" }
        guard elapsed >= 0.5, done > 0 else { return text }
        let rate = Double(done) / elapsed
        text += ", \(amount(Int64(rate), unit))/s"
        if let total, total > done { text += ", \(Int(Double(total - done) / rate + 0.5)) s left" }
        return text
    }

    static func amount(_ value: Int64, _ unit: Unit) -> String {
        switch unit {
        case .records:
            return "\(value) records"
        case .bytes:
            let units = ["B", "KiB", "MiB", "GiB", "TiB"]
            var scaled = Double(value)
            var index = 0
            while scaled >= 1024, index < units.count - 1 {
                scaled /= 1024
                index += 1
            }
            return index == 0 ? "\(value) B" : String(format: "%.1f %@", scaled, units[index])
        }
    }
}
