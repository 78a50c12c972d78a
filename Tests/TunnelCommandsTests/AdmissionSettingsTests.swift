import Testing
import TunnelGateway

@testable import TunnelCommands

/// The admission limits' bounds (docs/TUNNEL.md §7): each refusal names the setting, the least
/// it may be and the value given.
@Suite struct AdmissionSettingsTests {
    /// The sentence `tunnel gateway` refuses these settings with, or nil when it takes them.
    func refusal(_ environment: [String: String], nodeCapacity: Int = 100) throws -> String? {
        let settings = try GatewaySettings(
            try SettingsLoader.load(
                Schemas.gateway,
                SettingsInput(
                    environment: ["HOME": "/nonexistent-home", "PATH": "/usr/bin"].merging(environment) { $1 })))
        do {
            try AdmissionSettings.check(settings, nodeCapacity: nodeCapacity)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func theDefaultsPass() throws {
        #expect(try refusal([:]) == nil)
    }

    @Test func countsMustBePositiveAndTheAdminReserveMayBeZero() throws {
        #expect(
            try refusal(["TUNNEL_MAX_PENDING_HANDSHAKES": "0"])
                == "max-pending-handshakes must be at least 1 (got 0)")
        #expect(
            try refusal(["TUNNEL_STREAM_RECORDS_PER_OPERATOR_PER_MINUTE": "0"])
                == "stream-records-per-operator-per-minute must be at least 1 (got 0)")
        #expect(try refusal(["TUNNEL_ADMIN_RESERVED_STREAMS_PER_NODE": "0"]) == nil)
        #expect(
            try refusal(["TUNNEL_ADMIN_RESERVED_STREAMS_PER_NODE": "-1"])
                == "admin-reserved-streams-per-node must be at least 0 (got -1)")
    }

    @Test func theAdminReserveStaysBelowANodesCapacity() throws {
        #expect(
            try refusal(["TUNNEL_ADMIN_RESERVED_STREAMS_PER_NODE": "8"], nodeCapacity: 8)
                == "admin-reserved-streams-per-node must be below a node's 8 streams (got 8)")
    }

    @Test func durationsMustBeASecondAtLeast() throws {
        #expect(
            try refusal(["TUNNEL_ENROLLMENT_DEADLINE": "500ms"])
                == "enrollment-deadline must be at least 1s (got 500ms)")
        #expect(
            try refusal(["TUNNEL_REFUSAL_SUMMARY_INTERVAL": "999ms"])
                == "refusal-summary-interval must be at least 1s (got 999ms)")
    }
}
