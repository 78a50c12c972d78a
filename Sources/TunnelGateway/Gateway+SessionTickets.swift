import Foundation
import TunnelRuntime
import TunnelTLS

// The gateway's TLS context and the keys of nodes' session tickets: after a restart, a node
// that held a ticket resumes instead of making a full handshake, and is admitted exactly as
// after one (`TLSConfiguration.Resumption`).
extension Gateway {
    /// The one server context: nodes, operators, enrolling nodes and peer gateways, told apart
    /// by ALPN. Only nodes' sessions get tickets: operators' commands are one-shot processes,
    /// and enrollment never resumes.
    static func makeTLSContext(_ configuration: GatewayConfiguration, ticketKeys: TicketKeyRing?) throws
        -> TLSContext
    {
        var tls = TLSConfiguration(
            role: .server,
            identity: configuration.identity,
            peerVerification: .trustedCAs([
                TrustedCA(.node, certificate: configuration.nodeCA.certificate),
                TrustedCA(.operator, certificate: configuration.operatorCA.certificate),
            ]),
            applicationProtocols: [
                TunnelProtocol.nodeALPN, TunnelProtocol.operatorALPN, TunnelProtocol.enrollALPN,
                TunnelProtocol.peerALPN,
            ],
            enrollmentProtocol: TunnelProtocol.enrollALPN)
        if let ticketKeys {
            tls.resumption = .tickets(ticketKeys, protocols: [TunnelProtocol.nodeALPN])
        }
        return try TLSContext(configuration: tls)
    }

    /// A new ticket key when the newest is due (`TicketKeyRing.rotationSeconds`). If the file
    /// cannot be written the old keys stay in use, and the error is logged at each tick until
    /// it can.
    func rotateTicketKeys() {
        do {
            try ticketKeys?.rotateIfDue(now: Int64(Date().timeIntervalSince1970))
        } catch {
            logger.error("cannot rotate the session-ticket keys", metadata: ["error": "\(error.message)"])
        }
    }
}
