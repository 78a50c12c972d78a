import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore

typealias Core = GatewayCore<Int>
typealias Intent = GatewayIntent<Int>

/// The virtual clock: `seconds` after a fixed start, on both of the core's clocks.
func at(_ seconds: Double) -> Moment {
    Moment(loop: UInt64(seconds * 1000), unix: start + seconds)
}

/// Unix seconds at virtual time 0.
let start: Double = 1_800_000_000

/// A verified certificate of `role` `name`, signed by the CA that role belongs to unless told.
func certificate(
    _ role: PeerCertificate.Role, _ name: String, issuer: PeerCertificate.Issuer? = nil, lifetime: Int64 = 3600
) -> PeerCertificate {
    PeerCertificate(
        issuer: issuer ?? (role == .operator ? .operator : .node), role: role, name: name,
        uri: "tunnel://\(role.rawValue)/\(name)", serial: "serial-\(name)", notAfter: Int64(start) + lifetime)
}

/// Limits small enough to reach in a test: 6 streams a node, 3 per operator, 2 kept for admins.
let testLimits = StreamLimits(
    nodeCapacity: 6, streamsPerOperatorPerNode: 3, adminReservedStreamsPerNode: 2, nodeResetAllowance: 40,
    streamRecordsPerMinute: 600, streamRecordBurst: 60)

/// A core whose sentences show Unix seconds as numbers.
func makeCore(limits: StreamLimits = testLimits) -> Core {
    Core(limits: limits, timeText: { "t\($0)" })
}

extension Core {
    /// Opens connection `id` from `address` and authenticates it as node `name`.
    mutating func connectNode(
        _ id: Int, _ name: String, from address: String = "10.0.0.1:5000", now: Moment = at(0),
        lifetime: Int64 = 3600, clusterEpoch: Int64? = nil
    ) -> [Intent] {
        opened(id, sessionID: "s\(id)", remoteAddress: address)
        return nodeAuthenticated(
            id, certificate: certificate(.node, name, lifetime: lifetime), clusterEpoch: clusterEpoch, now: now)
    }
}

extension [Intent] {
    var records: [AuditEvent] {
        compactMap { if case .record(let event, _) = $0 { event } else { nil } }
    }

    var aborts: [(Int, Failure)] {
        compactMap { if case .abort(let id, let failure) = $0 { (id, failure) } else { nil } }
    }

    /// The messages logged at `level`.
    func logged(_ level: Logger.Level) -> [String] {
        compactMap { if case .log(level, let message, _) = $0 { "\(message)" } else { nil } }
    }
}
