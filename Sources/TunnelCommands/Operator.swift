import Foundation
import Logging
import TunnelOperator
import TunnelTLS
import TunnelText

/// What `tunnel whoami` reports: who the installed operator certificate says you are. Its JSON
/// shape is in docs/JSON.md.
public struct OperatorStatus: Codable, Equatable {
    /// `tunnel://operator/alice`
    public var identity: String
    public var name: String
    public var gateway: String
    public var serverName: String
    /// Unix seconds.
    public var notAfter: Int64
    public var expired: Bool
    /// In the last third of its life, when nodes renew too: time for `tunnel renew`. Not a
    /// fixed number of days: a renewal keeps the lifetime, so "less than 7 days" told the
    /// holder of every short-lived certificate to renew right after renewing.
    public var renewSoon: Bool

    /// Reads the certificate and key named by the operator settings. Fails (one line) when a
    /// file is missing, the key does not match or the certificate is not an operator's.
    public static func read(_ settings: OperatorSettings, now: Int64 = Int64(Date().timeIntervalSince1970))
        throws(CommandFailure) -> OperatorStatus
    {
        let certificate: Certificate, key: PrivateKey
        do {
            certificate = try Certificate.fromPEM(try DurableFile.read(path: settings.cert), source: settings.cert)
            key = try PrivateKey(pem: try DurableFile.read(path: settings.key), source: settings.key)
            _ = try Certificate.fromPEM(try DurableFile.read(path: settings.gatewayCA), source: settings.gatewayCA)
        } catch {
            throw .failed(
                "\(oneLine(error)); run `tunnel login BUNDLE` to install your operator files", .certificateMissing)
        }
        let identity: TunnelIdentity
        do {
            guard try certificate.publicKey().der() == key.publicKey().der() else {
                throw CommandFailure.failed(
                    "\(settings.key) does not belong to \(settings.cert); run `tunnel login BUNDLE` again",
                    .bundleInvalid)
            }
            identity = try certificate.tunnelIdentity()
        } catch {
            throw .failed(oneLine(error), .bundleInvalid)
        }
        return OperatorStatus(
            identity: "\(identity)", name: identity.name, gateway: "\(settings.gateway)",
            serverName: settings.serverName,
            notAfter: certificate.notAfter, expired: now >= certificate.notAfter,
            renewSoon: now < certificate.notAfter
                && certificate.notAfter - now < (certificate.notAfter - certificate.notBefore) / 3)
    }

    /// A few lines for people.
    public var text: String {
        var lines = [
            "identity:    \(identity)",
            "gateway:     \(gateway) (TLS name \(serverName))",
            "valid until: \(isoDate(notAfter))",
        ]
        if expired {
            lines.append("EXPIRED: ask an admin for a new bundle (tunnel user add)")
        } else if renewSoon {
            lines.append("in the last third of its life: run `tunnel renew`")
        }
        return lines.joined(separator: "\n")
    }

    /// The text `tunnel whoami` prints.
    public static func describe(_ settings: OperatorSettings, now: Int64 = Int64(Date().timeIntervalSince1970))
        throws(CommandFailure) -> String
    {
        try read(settings, now: now).text
    }
}

/// Connects to the gateway as an operator with `settings`, runs `body` once connected, and
/// returns the exit code the session finishes with. A connection failure, the gateway going
/// away, or a `session.fail` is thrown as one line with its code.
func withOperatorSession(
    _ settings: OperatorSettings, logger: Logger, _ body: @escaping (OperatorSession) -> Void
) throws(CommandFailure) -> Int32 {
    let endpoint = try settings.endpoint()
    do {
        return try OperatorSession.run(endpoint: endpoint, logger: logger, body)
    } catch {
        throw CommandFailure(error)
    }
}
