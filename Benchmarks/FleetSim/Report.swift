import Foundation
import Histogram

extension FleetStats {
    /// One status line: who is online, what moves, what went wrong so far.
    func statusLine(elapsed: Double, previousBytes: inout UInt64, interval: Double) -> String {
        read { counters in
            let bytes = counters.bytesVerified
            let rate = Double(bytes &- previousBytes) / max(interval, 0.001) / 1e6
            previousBytes = bytes
            return String(format: "[%7.1fs] online %d/%d", elapsed, counters.online, counters.nodes)
                + " | streams in flight \(counters.streamsInFlight), done \(counters.streamsCompleted)"
                + String(format: " | %.1f MB/s verified", rate)
                + " | wrong \(counters.streamsWrong) lost \(counters.streamsLost) dial-failures \(counters.dialFailures)"
        }
    }

    /// The final report as JSON: every count, each histogram's percentiles in milliseconds, and
    /// every distinct error with its count.
    func reportJSON(seconds: Double, extra: [String: Any]) -> [String: Any] {
        read { counters in
            var report: [String: Any] = extra
            report["seconds"] = seconds
            report["nodes"] = counters.nodes
            report["online"] = counters.online
            report["sessions"] = counters.sessions
            report["sessions_lost"] = counters.sessionsLost
            report["dial_failures"] = counters.dialFailures
            report["door_refusals"] = counters.doorRefusals
            report["enrolled"] = counters.enrolled
            report["enroll_failures"] = counters.enrollFailures
            report["flaps"] = counters.flaps
            report["streams_opened"] = counters.streamsOpened
            report["streams_completed"] = counters.streamsCompleted
            report["streams_in_flight"] = counters.streamsInFlight
            report["streams_ended_with_reason"] = counters.streamsEndedWithReason
            report["streams_wrong"] = counters.streamsWrong
            report["streams_lost"] = counters.streamsLost
            report["operator_sessions_lost"] = counters.operatorSessionsLost
            report["bytes_sent"] = counters.bytesSent
            report["bytes_verified"] = counters.bytesVerified
            report["bytes_wrong"] = counters.bytesWrong
            report["verified_mb_per_s"] = seconds > 0 ? Double(counters.bytesVerified) / seconds / 1e6 : 0
            report["served_by_nodes"] = counters.servedByNodes
            report["served_cleanly"] = counters.servedCleanly
            report["connect_ms"] = percentiles(counters.connectLatency)
            report["enroll_ms"] = percentiles(counters.enrollLatency)
            report["accept_ms"] = percentiles(counters.acceptLatency)
            report["completion_ms"] = counters.completionLatency.mapValues(percentiles)
            report["errors"] = counters.errors
            return report
        }
    }

    /// The human summary: the same figures, a line each.
    func summary(seconds: Double) -> String {
        read { counters in
            var lines = [
                String(
                    format:
                        "fleet-sim: %.1f s, %d nodes (%d online), %d sessions, %d lost, %d flaps, %d dial failures (%d refused at the door)",
                    seconds, counters.nodes, counters.online, counters.sessions, counters.sessionsLost, counters.flaps,
                    counters.dialFailures, counters.doorRefusals),
                "streams: \(counters.streamsOpened) opened, \(counters.streamsCompleted) completed, \(counters.streamsWrong) wrong, "
                    + "\(counters.streamsLost) lost, \(counters.streamsInFlight) still in flight; operator sessions lost: \(counters.operatorSessionsLost)",
                String(
                    format: "bytes: %.1f MB sent, %.1f MB verified (%.1f MB/s), %d wrong",
                    Double(counters.bytesSent) / 1e6, Double(counters.bytesVerified) / 1e6,
                    seconds > 0 ? Double(counters.bytesVerified) / seconds / 1e6 : 0, counters.bytesWrong),
                "node connect (dial to admitted): \(describe(counters.connectLatency))",
            ]
            if counters.enrolled > 0 || counters.enrollFailures > 0 {
                lines.append(
                    "enrollment: \(counters.enrolled) enrolled, \(counters.enrollFailures) failed attempts, \(describe(counters.enrollLatency))"
                )
            }
            if counters.acceptLatency.totalCount > 0 {
                lines.append("stream accepted: \(describe(counters.acceptLatency))")
            }
            for (key, histogram) in counters.completionLatency.sorted(by: { $0.key < $1.key }) {
                lines.append("stream \(key) complete: \(describe(histogram))")
            }
            for (reason, count) in counters.streamsEndedWithReason.sorted(by: { $0.key < $1.key }) {
                lines.append("ended with a reason: \(count) × \(reason)")
            }
            for (error, count) in counters.errors.sorted(by: { $0.value > $1.value }).prefix(40) {
                lines.append("error: \(count) × \(error)")
            }
            return lines.joined(separator: "\n")
        }
    }
}

private func percentiles(_ histogram: Latencies) -> [String: Any] {
    func ms(_ value: UInt64) -> Double { (Double(value) / 1000 * 10).rounded() / 10 }
    return [
        "count": histogram.totalCount, "p50": ms(histogram.valueAtPercentile(50)),
        "p90": ms(histogram.valueAtPercentile(90)),
        "p99": ms(histogram.valueAtPercentile(99)), "p999": ms(histogram.valueAtPercentile(99.9)),
        "max": ms(histogram.max),
    ]
}

private func describe(_ histogram: Latencies) -> String {
    guard histogram.totalCount > 0 else { return "none" }
    func ms(_ percentile: Double) -> String {
        String(format: "%.1f", Double(histogram.valueAtPercentile(percentile)) / 1000)
    }
    return
        "n=\(histogram.totalCount) p50 \(ms(50)) p90 \(ms(90)) p99 \(ms(99)) max \(String(format: "%.1f", Double(histogram.max) / 1000)) ms"
}

/// Writes a line to standard output at once (not through a buffer), so scripts that wait for a
/// line see it when it happens.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
