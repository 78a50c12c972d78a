import Foundation
import Histogram

/// Latencies in microseconds, up to an hour, three significant digits.
typealias Latencies = Histogram<UInt64>

func makeLatencies() -> Latencies {
    Latencies(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

/// Everything the simulator counts, shared by all loop threads.
///
/// `@unchecked Sendable` is sound because every stored property is reached only inside
/// `update`/`read`, under `lock`.
final class FleetStats: @unchecked Sendable {
    struct Counters {
        var nodes = 0
        var online = 0
        var sessions = 0
        var sessionsLost = 0
        var dialFailures = 0
        /// Of those, dials the gateway closed after reading the ClientHello, with no TLS reply: its
        /// admission turned them away (the pending-handshake cap in a burst of connects).
        var doorRefusals = 0
        var enrolled = 0
        var enrollFailures = 0
        var flaps = 0
        /// Time from dialing to the gateway's HELLO (the node admitted).
        var connectLatency = makeLatencies()
        var enrollLatency = makeLatencies()

        var streamsOpened = 0
        var streamsCompleted = 0
        var streamsInFlight = 0
        /// Streams the gateway or node refused or reset with a code that says why, by code name.
        var streamsEndedWithReason: [String: Int] = [:]
        var bytesSent: UInt64 = 0
        var bytesVerified: UInt64 = 0
        var bytesWrong: UInt64 = 0
        var streamsWrong = 0
        /// Streams that hung, came back short, or were reset with no reason the run explains.
        var streamsLost = 0
        var acceptLatency = makeLatencies()
        var completionLatency: [String: Latencies] = [:]
        /// Streams the nodes served, by service, and how many of them ended cleanly.
        var servedByNodes: [String: Int] = [:]
        var servedCleanly = 0
        var operatorSessionsLost = 0

        /// Node readiness after each `markRestart`: which nodes are back, and after how long.
        var episode = 0
        var episodeStartNanos: UInt64 = 0
        var episodeBack = makeLatencies()
        var episodeReported = true
        var readyEpisode: [Int] = []
        var errors: [String: Int] = [:]
    }

    private let lock = NSLock()
    private var counters = Counters()
    /// The fatal findings: a byte wrong or a stream lost without a reason.
    var failed: Bool {
        read { $0.bytesWrong > 0 || $0.streamsWrong > 0 || $0.streamsLost > 0 || $0.operatorSessionsLost > 0 }
    }

    func update<Result>(_ body: (inout Counters) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&counters)
    }

    func read<Result>(_ body: (Counters) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(counters)
    }

    /// Distinct error sentences are kept up to this many; the rest are counted under one line.
    static let errorKinds = 1000

    func error(_ message: String) {
        update { counters in
            let key =
                counters.errors.count < Self.errorKinds || counters.errors[message] != nil ? message : "(other errors)"
            counters.errors[key, default: 0] += 1
        }
    }

    func configure(nodes: Int) {
        update {
            $0.nodes = nodes
            $0.readyEpisode = Array(repeating: 0, count: nodes)
        }
    }

    /// The gateway was (re)started now: from here, measure how long each node takes to be back.
    func markRestart(nanos: UInt64) {
        let previous = update { counters -> String? in
            let report = counters.episodeReported ? nil : Self.episodeLine(counters, partial: true)
            counters.episode += 1
            counters.episodeStartNanos = nanos
            counters.episodeBack = makeLatencies()
            counters.episodeReported = false
            return report
        }
        if let previous { say(previous) }
        say("RESTART MARK \(read { $0.episode })")
    }

    func nodeReady(index: Int, dialNanos: UInt64, nowNanos: UInt64) {
        let line = update { counters -> String? in
            counters.online += 1
            counters.sessions += 1
            _ = counters.connectLatency.record((nowNanos &- dialNanos) / 1000)
            guard counters.episode > 0, counters.readyEpisode[index] < counters.episode else { return nil }
            counters.readyEpisode[index] = counters.episode
            _ = counters.episodeBack.record(max(1, (nowNanos &- counters.episodeStartNanos) / 1000))
            guard !counters.episodeReported, counters.episodeBack.totalCount == UInt64(counters.nodes) else {
                return nil
            }
            counters.episodeReported = true
            return Self.episodeLine(counters, partial: false)
        }
        if let line {
            say(line)
        }
    }

    static func episodeLine(_ counters: Counters, partial: Bool) -> String {
        let back = counters.episodeBack
        func ms(_ percentile: Double) -> String {
            String(format: "%.0f", Double(back.valueAtPercentile(percentile)) / 1000)
        }
        return "EPISODE \(counters.episode): back \(back.totalCount)/\(counters.nodes)\(partial ? " (incomplete)" : "")"
            + " p50_ms=\(ms(50)) p99_ms=\(ms(99)) max_ms=\(String(format: "%.0f", Double(back.max) / 1000))"
    }

    /// Prints the last restart's line if it never completed.
    func finishEpisode() {
        let line = update { counters -> String? in
            guard !counters.episodeReported else { return nil }
            counters.episodeReported = true
            return Self.episodeLine(counters, partial: true)
        }
        if let line { say(line) }
    }
}
