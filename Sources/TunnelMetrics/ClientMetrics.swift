import Prometheus

/// The edge client's few metrics (docs/METRICS.md): its session, reconnects, the streams it
/// served by service, and the bytes it moved to and from local services. Loop-confined: not
/// `Sendable`.
public final class ClientMetrics {
    public let registry = PrometheusCollectorRegistry()
    /// The gateway names the service; names the client does not offer are counted as `other`.
    private var services = LabelBound(maximum: 64)

    public init() {}

    /// The `/metrics` body, with the session gauge and the certificate's expiry set from now.
    public func exposition(sessionUp: Bool, certificateNotAfter: Int64) -> [UInt8] {
        registry.makeGauge(descriptor: Name.sessionUp).set(to: sessionUp ? 1 : 0)
        registry.makeGauge(descriptor: Name.certificateExpiry).set(to: Double(certificateNotAfter))
        return registry.emitToBuffer()
    }

    /// A session to the gateway ended and another will be dialed.
    public func reconnecting() {
        registry.makeCounter(descriptor: Name.reconnects).increment()
    }

    /// A stream the gateway opened, by service and outcome (`ok`, `unknown_service`, `unreachable`, `bad_request`).
    public func streamServed(service: String, outcome: String) {
        registry.makeCounter(
            descriptor: Name.streamsServed, labels: [("service", services.admit(service)), ("outcome", outcome)]
        ).increment()
    }

    /// Bytes a finished stream moved between the tunnel and its local service.
    public func relayed(toService: Int, fromService: Int) {
        for (direction, bytes) in [("to_service", toService), ("from_service", fromService)] where bytes > 0 {
            registry.makeCounter(descriptor: Name.relayedBytes, labels: [("direction", direction)]).increment(
                by: Int64(bytes))
        }
    }

    /// Names and help of the client's metrics. Computed: the descriptor type is not `Sendable`.
    enum Name {
        static var sessionUp: MetricNameDescriptor {
            .tunnel(subsystem: "client", "session_up", "1 while the session to the gateway is up")
        }
        static var certificateExpiry: MetricNameDescriptor {
            .tunnel(
                subsystem: "client", "certificate_expiry_timestamp", unit: "seconds",
                "Unix time at which this node's certificate expires")
        }
        static var reconnects: MetricNameDescriptor {
            .tunnel(
                subsystem: "client", "reconnects", unit: "total",
                "Sessions to the gateway that ended and were dialed again")
        }
        static var streamsServed: MetricNameDescriptor {
            .tunnel(
                subsystem: "client", "streams_served", unit: "total",
                "Streams the gateway opened, by service and outcome")
        }
        static var relayedBytes: MetricNameDescriptor {
            .tunnel(
                subsystem: "client", "relayed_bytes", unit: "total", "Bytes moved between the tunnel and local services"
            )
        }
    }
}
