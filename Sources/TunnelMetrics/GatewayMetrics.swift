import Prometheus

/// The gateway's Prometheus metrics (docs/TUNNEL.md §Metrics), on a registry of their own (no
/// process-wide bootstrap, so tests and several gateways in one process do not share counts).
/// Counters are bumped where decisions are made; gauges of state (nodes online, connections,
/// open streams, certificate expiry) are set from a `GatewaySnapshot` at each scrape, so they
/// cannot drift from the gateway's own tables. Loop-confined: not `Sendable`.
public final class GatewayMetrics {
    public let registry = PrometheusCollectorRegistry()
    /// Operators may name services that do not exist; their refusals must not add series forever.
    private var services = LabelBound(maximum: 64)
    /// Running totals of the admission refusals already added to the counter.
    private var countedRefusals: [String: Int] = [:]

    /// Seconds: an fsync on a healthy disk takes well under 10 ms; a sick one, seconds.
    static let auditBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    static let loopBuckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    static let storeBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

    public init() {}

    /// What the gateway holds at the moment of a scrape.
    public struct GatewaySnapshot {
        public var nodesOnline: Int
        /// Connections by kind: `node`, `operator`, `enrolling`, `handshake`, `peer`.
        public var connections: [String: Int]
        public var streamsOpen: Int
        /// Unix time at which each certificate expires: `gateway`, `node_ca`, `operator_ca`.
        public var certificateExpiry: [String: Int64]
        public var auditWritable: Bool
        /// Pre-authentication refusals since start, by reason (running totals).
        public var admissionRefusals: [String: Int]

        public init(
            nodesOnline: Int, connections: [String: Int], streamsOpen: Int, certificateExpiry: [String: Int64],
            auditWritable: Bool, admissionRefusals: [String: Int]
        ) {
            self.nodesOnline = nodesOnline
            self.connections = connections
            self.streamsOpen = streamsOpen
            self.certificateExpiry = certificateExpiry
            self.auditWritable = auditWritable
            self.admissionRefusals = admissionRefusals
        }
    }

    /// The exposition of every metric after setting the gauges from `snapshot`.
    public func exposition(_ snapshot: GatewaySnapshot) -> [UInt8] {
        registry.makeGauge(descriptor: Name.nodesOnline).set(to: Double(snapshot.nodesOnline))
        for kind in ["node", "operator", "enrolling", "handshake"] {
            registry.makeGauge(descriptor: Name.connections, labels: [("kind", kind)]).set(
                to: Double(snapshot.connections[kind] ?? 0))
        }
        registry.makeGauge(descriptor: Name.streamsOpen).set(to: Double(snapshot.streamsOpen))
        for (certificate, notAfter) in snapshot.certificateExpiry.sorted(by: { $0.key < $1.key }) {
            registry.makeGauge(descriptor: Name.certificateExpiry, labels: [("certificate", certificate)]).set(
                to: Double(notAfter))
        }
        registry.makeGauge(descriptor: Name.auditWritable).set(to: snapshot.auditWritable ? 1 : 0)
        // Every established peer link counts, dialed by either side.
        registry.makeGauge(descriptor: Name.peerLinksUp).set(to: Double(snapshot.connections["peer"] ?? 0))
        for (reason, total) in snapshot.admissionRefusals.sorted(by: { $0.key < $1.key })
        where total > countedRefusals[reason, default: 0] {
            refusal(reason, count: total - countedRefusals[reason, default: 0])
            countedRefusals[reason] = total
        }
        return registry.emitToBuffer()
    }

    /// A finished TLS handshake of `kind` (`node`, `operator`, `enroll`) and whether the peer was admitted.
    public func handshake(kind: String, admitted: Bool) {
        registry.makeCounter(
            descriptor: Name.handshakes, labels: [("kind", kind), ("outcome", admitted ? "ok" : "refused")]
        ).increment()
    }

    /// A handshake that resumed a node's session from a ticket instead of exchanging certificates.
    public func resumedHandshake() {
        registry.makeCounter(descriptor: Name.resumedHandshakes).increment()
    }

    /// A connection refused, before or after authentication, for `reason`.
    public func refusal(_ reason: String, count: Int = 1) {
        registry.makeCounter(descriptor: Name.refusals, labels: [("reason", reason)]).increment(by: Int64(count))
    }

    /// An operator's stream open decided: `ok`, `denied` (policy), `rate_limited`, `audit_unavailable`, ...
    public func streamOpened(service: String, outcome: String, count: Int = 1) {
        guard count > 0 else { return }
        let service = services.admit(service)
        registry.makeCounter(descriptor: Name.streamsOpened, labels: [("service", service), ("outcome", outcome)])
            .increment(by: Int64(count))
        if outcome == "denied" {
            registry.makeCounter(descriptor: Name.policyDenials).increment(by: Int64(count))
        }
    }

    /// Bytes a finished stream carried each way.
    public func relayed(toNode: Int64, fromNode: Int64) {
        for (direction, bytes) in [("to_node", toNode), ("from_node", fromNode)] where bytes > 0 {
            registry.makeCounter(descriptor: Name.relayedBytes, labels: [("direction", direction)]).increment(by: bytes)
        }
    }

    /// One audit record's write: how long it took, and whether it failed.
    public func auditWrite(seconds: Double, failed: Bool) {
        registry.makeValueHistogram(descriptor: Name.auditWriteDuration, labels: [], buckets: Self.auditBuckets).record(
            seconds)
        if failed { registry.makeCounter(descriptor: Name.auditWriteFailures).increment() }
    }

    /// An enrollment (`enroll`, or `reenroll` with a previous certificate) decided, `ok` or `refused`.
    public func enrollment(_ kind: String, outcome: String) {
        registry.makeCounter(descriptor: Name.enrollments, labels: [("kind", kind), ("outcome", outcome)]).increment()
    }

    /// A node certificate renewal decided, `ok` or `refused`.
    public func renewal(outcome: String) {
        registry.makeCounter(descriptor: Name.renewals, labels: [("outcome", outcome)]).increment()
    }

    /// One fleet-store call: which, how long, and whether it failed.
    public func storeCall(_ operation: String, seconds: Double, failed: Bool) {
        registry.makeValueHistogram(
            descriptor: Name.storeDuration, labels: [("operation", operation)], buckets: Self.storeBuckets
        ).record(seconds)
        if failed { registry.makeCounter(descriptor: Name.storeErrors, labels: [("operation", operation)]).increment() }
    }

    /// How late a once-a-second tick of the gateway's loop ran: the rest of the loop turn that
    /// was going on when it fell due, a sample of how long frames wait for the loop.
    public func loopDelay(seconds: Double) {
        registry.makeValueHistogram(descriptor: Name.loopDelay, labels: [], buckets: Self.loopBuckets).record(seconds)
    }

    /// Every metric's name and help, in one place (docs/METRICS.md lists them). Computed: the
    /// library's descriptor type is not `Sendable`, so it cannot be a stored static.
    enum Name {
        static var nodesOnline: MetricNameDescriptor {
            .tunnel("nodes_online", "Nodes with a live session on this gateway")
        }
        static var connections: MetricNameDescriptor { .tunnel("connections", "Open connections by kind") }
        static var streamsOpen: MetricNameDescriptor { .tunnel("streams_open", "Operator streams being relayed now") }
        static var certificateExpiry: MetricNameDescriptor {
            .tunnel(
                "certificate_expiry_timestamp", unit: "seconds",
                "Unix time at which the gateway's certificate or a CA expires")
        }
        static var auditWritable: MetricNameDescriptor {
            .tunnel("audit_writable", "1 while the audit log can be written, 0 while streams are refused for it")
        }
        static var peerLinksUp: MetricNameDescriptor {
            .tunnel("peer_links_up", "Peer links to other gateway replicas that are up (0 without a cluster)")
        }
        static var handshakes: MetricNameDescriptor {
            .tunnel("handshakes", unit: "total", "Completed TLS handshakes by peer kind and outcome")
        }
        static var resumedHandshakes: MetricNameDescriptor {
            .tunnel("handshakes_resumed", unit: "total", "Node handshakes that resumed a session from a ticket")
        }
        static var refusals: MetricNameDescriptor {
            .tunnel("refusals", unit: "total", "Connections and enrollment requests refused, by reason")
        }
        static var streamsOpened: MetricNameDescriptor {
            .tunnel("streams_opened", unit: "total", "Operator stream opens by service and outcome")
        }
        static var policyDenials: MetricNameDescriptor {
            .tunnel("policy_denials", unit: "total", "Stream opens the policy denied")
        }
        static var relayedBytes: MetricNameDescriptor {
            .tunnel("relayed_bytes", unit: "total", "Bytes relayed between operators and nodes")
        }
        static var auditWriteDuration: MetricNameDescriptor {
            .tunnel(
                "audit_write_duration", unit: "seconds", "Time to append one audit record (with fsync when durable)")
        }
        static var auditWriteFailures: MetricNameDescriptor {
            .tunnel("audit_write_failures", unit: "total", "Audit records that could not be written")
        }
        static var enrollments: MetricNameDescriptor {
            .tunnel("enrollments", unit: "total", "Node enrollments by kind and outcome")
        }
        static var renewals: MetricNameDescriptor {
            .tunnel("renewals", unit: "total", "Node certificate renewals by outcome")
        }
        static var storeDuration: MetricNameDescriptor {
            .tunnel("store_operation_duration", unit: "seconds", "Time of fleet-store calls by operation")
        }
        static var loopDelay: MetricNameDescriptor {
            .tunnel("loop_delay", unit: "seconds", "How late the gateway's once-a-second tick ran (a loop turn's rest)")
        }
        static var storeErrors: MetricNameDescriptor {
            .tunnel("store_errors", unit: "total", "Fleet-store calls that failed, by operation")
        }
    }
}

/// Elapsed time in seconds, Prometheus' base unit, on the monotonic clock.
public enum Elapsed {
    public static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = start.duration(to: .now).components
        return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    }
}
