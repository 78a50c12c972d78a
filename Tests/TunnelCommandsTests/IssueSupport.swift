import Foundation
import TunnelTLS

@testable import TunnelCommands

/// Certificates straight from a PKI directory's CAs, standing in for what the running gateway
/// issues at enrollment and `tunnel user add`, for tests of files, logins and TLS alone.
enum TestIssuer {
    struct Issued {
        let identity: TunnelIdentity
        let certificate: Certificate
        let key: PrivateKey
        let gatewayCA: Certificate
    }

    static func issue(_ role: TunnelIdentity.Role, name: String, caDirectory: String, lifetime: Int64, now: Int64)
        throws -> Issued
    {
        let identity = try TunnelIdentity(role: role, name: name)
        let ca = try CADirectory.loadCA(role, directory: caDirectory)
        let key = try PrivateKey.generateP256()
        let certificate = try ca.issueClientCertificate(
            for: key.publicKey(), identity: identity, validity: CertificateValidity(now: now, lifetime: lifetime))
        return Issued(
            identity: identity, certificate: certificate, key: key,
            gatewayCA: try CADirectory.loadCA(.node, directory: caDirectory).certificate)
    }

    /// Writes OUT/NAME.crt, OUT/NAME.key and OUT/gateway-ca.crt.
    static func issueNode(
        name: String, caDirectory: String, outputDirectory: String, lifetime: Int64 = 86_400, now: Int64
    ) throws -> (Issued, [String]) {
        let issued = try issue(.node, name: name, caDirectory: caDirectory, lifetime: lifetime, now: now)
        try makePrivateDirectory(outputDirectory)
        try DurableFile.write(path: "\(outputDirectory)/\(name).key", bytes: issued.key.pem(), mode: 0o600)
        try DurableFile.write(path: "\(outputDirectory)/\(name).crt", bytes: issued.certificate.pem(), mode: 0o644)
        try DurableFile.write(path: "\(outputDirectory)/gateway-ca.crt", bytes: issued.gatewayCA.pem(), mode: 0o644)
        return (issued, ["\(outputDirectory)/\(name).crt"])
    }

    /// Writes an operator bundle as `tunnel user add` does.
    static func issueOperatorBundle(
        name: String, caDirectory: String, gateway: HostPort, serverName: String?, outputPath: String,
        lifetime: Int64 = 86_400, now: Int64
    ) throws -> (Issued, String) {
        let issued = try issue(.operator, name: name, caDirectory: caDirectory, lifetime: lifetime, now: now)
        let bundle = OperatorBundle(
            gateway: gateway, serverName: serverName,
            certificatePEM: String(decoding: try issued.certificate.pem(), as: UTF8.self),
            keyPEM: String(decoding: try issued.key.pem(), as: UTF8.self),
            gatewayCAPEM: String(decoding: try issued.gatewayCA.pem(), as: UTF8.self))
        try DurableFile.write(
            path: outputPath,
            bytes: Array(bundle.render(identity: issued.identity, notAfter: issued.certificate.notAfter).utf8),
            mode: 0o600)
        return (issued, outputPath)
    }
}
