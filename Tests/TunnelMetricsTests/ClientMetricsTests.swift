import Testing

@testable import TunnelMetrics

/// The edge client's exposition: its session gauge, reconnects, streams by service and bytes.
@Suite struct ClientMetricsTests {
    @Test func sessionStreamsAndBytes() {
        let metrics = ClientMetrics()
        metrics.reconnecting()
        metrics.streamServed(service: "ssh", outcome: "ok")
        metrics.streamServed(service: "ssh", outcome: "unreachable")
        metrics.relayed(toService: 100, fromService: 0)
        let lines = Set(
            String(decoding: metrics.exposition(sessionUp: true, certificateNotAfter: 1_800_000_000), as: UTF8.self)
                .split(separator: "\n").map(String.init))
        for expected in [
            "# TYPE tunnel_client_session_up gauge", "tunnel_client_session_up 1.0",
            "tunnel_client_certificate_expiry_timestamp_seconds 1800000000.0", "tunnel_client_reconnects_total 1",
            #"tunnel_client_streams_served_total{service="ssh",outcome="ok"} 1"#,
            #"tunnel_client_streams_served_total{service="ssh",outcome="unreachable"} 1"#,
            #"tunnel_client_relayed_bytes_total{direction="to_service"} 100"#,
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
        #expect(
            !lines.contains { $0.hasPrefix(#"tunnel_client_relayed_bytes_total{direction="from_service"}"#) },
            "no series for zero bytes")
    }
}
