import Logging
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Asks the gateway's time on an enrollment connection that checks the gateway's chain and name
/// but no dates, so it works from a machine whose clock is wrong: what a node checks certificates
/// against until its clock is fixed, and what `tunnel doctor --node` measures the skew with.
public func askGatewayTime(
    loop: EventLoop, host: String, port: UInt16, serverName: String, gatewayCA: Certificate, logger: Logger,
    completion: @escaping (Result<Int64, FleetFailure>) -> Void
) {
    EnrollmentCall(
        loop: loop, host: host, port: port, serverName: serverName,
        verification: .trustedCAs([TrustedCA(.gateway, certificate: gatewayCA)]),
        identity: nil, certificateTime: .unchecked, request: .time, logger: logger
    ) { result, _ in
        completion(result.map(\.gatewayTime))
    }
}

/// `askGatewayTime` on a loop of its own, run until it answers: for a command that asks once
/// (`tunnel doctor --node`). nil when the gateway gave no answer; throws when no loop can start.
public func askGatewayTimeOnce(
    host: String, port: UInt16, serverName: String, gatewayCA: Certificate, logger: Logger
) throws -> Result<Int64, FleetFailure>? {
    let loop = try EventLoop()
    var answer: Result<Int64, FleetFailure>?
    askGatewayTime(
        loop: loop, host: host, port: port, serverName: serverName, gatewayCA: gatewayCA, logger: logger
    ) { answer = $0 }
    loop.run()
    _ = loop.close()
    return answer
}

extension TLSError {
    /// The handshake refused a certificate by its dates (not yet valid, or expired): what a
    /// wrong clock on this machine looks like, so the client asks the gateway's time.
    var refusedCertificateDates: Bool { code == .certificateNotYetValid || code == .certificateExpired }
}
