import Testing

@testable import TunnelMetrics

/// The exposition text Prometheus reads: names, types, labels and values, and the bounds on what
/// peers can make it grow by.
@Suite struct GatewayMetricsTests {
    static func snapshot(nodes: Int = 2, refusals: [String: Int] = [:]) -> GatewayMetrics.GatewaySnapshot {
        .init(
            nodesOnline: nodes, connections: ["node": nodes, "operator": 1], streamsOpen: 3,
            certificateExpiry: ["gateway": 1_900_000_000, "node_ca": 2_000_000_000], auditWritable: true,
            admissionRefusals: refusals)
    }

    static func lines(_ metrics: GatewayMetrics, _ snapshot: GatewayMetrics.GatewaySnapshot = snapshot()) -> Set<String>
    {
        Set(String(decoding: metrics.exposition(snapshot), as: UTF8.self).split(separator: "\n").map(String.init))
    }

    @Test func gaugesComeFromTheSnapshotWithTypesAndHelp() {
        let lines = Self.lines(GatewayMetrics())
        for expected in [
            "# TYPE tunnel_nodes_online gauge", "tunnel_nodes_online 2.0",
            #"tunnel_connections{kind="node"} 2.0"#, #"tunnel_connections{kind="operator"} 1.0"#,
            #"tunnel_connections{kind="handshake"} 0.0"#,
            "tunnel_streams_open 3.0",
            #"tunnel_certificate_expiry_timestamp_seconds{certificate="gateway"} 1900000000.0"#,
            "tunnel_audit_writable 1.0", "tunnel_peer_links_up 0.0",
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
        #expect(lines.contains { $0.hasPrefix("# HELP tunnel_nodes_online ") })
    }

    @Test func countersAreTotalsWithTheirLabels() {
        let metrics = GatewayMetrics()
        metrics.handshake(kind: "node", admitted: true)
        metrics.handshake(kind: "node", admitted: true)
        metrics.handshake(kind: "operator", admitted: false)
        metrics.streamOpened(service: "ssh", outcome: "ok")
        metrics.streamOpened(service: "ssh", outcome: "denied")
        metrics.relayed(toNode: 10, fromNode: 2048)
        metrics.enrollment("enroll", outcome: "ok")
        metrics.renewal(outcome: "refused")
        let lines = Self.lines(metrics)
        for expected in [
            "# TYPE tunnel_handshakes_total counter",
            #"tunnel_handshakes_total{kind="node",outcome="ok"} 2"#,
            #"tunnel_handshakes_total{kind="operator",outcome="refused"} 1"#,
            #"tunnel_streams_opened_total{service="ssh",outcome="ok"} 1"#,
            #"tunnel_streams_opened_total{service="ssh",outcome="denied"} 1"#,
            "tunnel_policy_denials_total 1",
            #"tunnel_relayed_bytes_total{direction="to_node"} 10"#,
            #"tunnel_relayed_bytes_total{direction="from_node"} 2048"#,
            #"tunnel_enrollments_total{kind="enroll",outcome="ok"} 1"#, #"tunnel_renewals_total{outcome="refused"} 1"#,
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
    }

    @Test func admissionRefusalTotalsAreAddedOnceAcrossScrapes() {
        let metrics = GatewayMetrics()
        _ = metrics.exposition(Self.snapshot(refusals: ["connection-rate": 3]))
        let lines = Self.lines(metrics, Self.snapshot(refusals: ["connection-rate": 5, "malformed": 1]))
        #expect(lines.contains(#"tunnel_refusals_total{reason="connection-rate"} 5"#))
        #expect(lines.contains(#"tunnel_refusals_total{reason="malformed"} 1"#))
    }

    @Test func histogramsInSecondsWithBucketsSumAndCount() {
        let metrics = GatewayMetrics()
        metrics.auditWrite(seconds: 0.003, failed: false)
        metrics.auditWrite(seconds: 0.2, failed: true)
        metrics.storeCall("nodes", seconds: 0.0002, failed: false)
        metrics.loopDelay(seconds: 0.3)
        let lines = Self.lines(metrics)
        for expected in [
            "# TYPE tunnel_audit_write_duration_seconds histogram",
            #"tunnel_audit_write_duration_seconds_bucket{le="0.005"} 1"#,
            #"tunnel_audit_write_duration_seconds_bucket{le="+Inf"} 2"#,
            "tunnel_audit_write_duration_seconds_count 2", "tunnel_audit_write_failures_total 1",
            #"tunnel_store_operation_duration_seconds_bucket{operation="nodes",le="0.0005"} 1"#,
            #"tunnel_loop_delay_seconds_bucket{le="0.25"} 0"#, #"tunnel_loop_delay_seconds_bucket{le="0.5"} 1"#,
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
    }

    @Test func servicesPastTheCapShareOneLabel() {
        let metrics = GatewayMetrics()
        for index in 0..<100 { metrics.streamOpened(service: "made-up-\(index)", outcome: "unknown_service") }
        let opened = Self.lines(metrics).filter { $0.hasPrefix("tunnel_streams_opened_total{") }
        #expect(opened.count == 65, "64 named services and one `other`")
        #expect(opened.contains(#"tunnel_streams_opened_total{service="other",outcome="unknown_service"} 36"#))
    }

    @Test func endpointRoutes() {
        let body = Array("tunnel_nodes_online 1.0\n".utf8)
        let metrics = MetricsEndpoint.respond(
            path: MetricsEndpoint.path(of: "/metrics?x=1"), exposition: { body }, unreadiness: { [] })
        #expect(
            metrics.status == 200 && metrics.body == body && metrics.contentType.hasPrefix("text/plain; version=0.0.4"))
        #expect(MetricsEndpoint.respond(path: "/healthz", exposition: { [] }, unreadiness: { ["x"] }).status == 200)
        #expect(MetricsEndpoint.respond(path: "/readyz", exposition: { [] }, unreadiness: { [] }).status == 200)
        let notReady = MetricsEndpoint.respond(
            path: "/readyz", exposition: { [] },
            unreadiness: { ["not listening", "audit log not writable: disk full"] })
        #expect(notReady.status == 503)
        #expect(
            String(decoding: notReady.body, as: UTF8.self)
                == "not ready: not listening; audit log not writable: disk full\n")
        #expect(MetricsEndpoint.respond(path: "/", exposition: { [] }, unreadiness: { [] }).status == 404)
    }
}
