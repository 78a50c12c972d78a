import TunnelGateway
import TunnelTLS
import TunnelText

/// The gateway's PKI directory as the commands use it (`tunnel ca init`, `tunnel token`,
/// `tunnel dev`, the gateway's first start): the flags checked, the directory made, and
/// `GatewayPKI`'s errors as one line with their code.
enum CADirectory {
    /// Creates both CAs and the gateway certificate (`GatewayPKI.initialize`), after checking
    /// the names and addresses given with --gateway-name and --gateway-ip.
    static func create(_ options: GatewayPKI.InitOptions) throws(CommandFailure) -> GatewayPKI.InitResult {
        for name in options.gatewayNames where !DNSName.isValid(name) {
            throw .usage(
                "--gateway-name: \"\(name)\" is not a DNS name (letters, digits, '-', dots; no wildcards), e.g. gateway.example.com",
                .usage)
        }
        for ip in options.gatewayIPs where !(HostPort.isIPv4(ip) || HostPort.isIPv6(ip)) {
            throw .usage(
                "--gateway-ip: \"\(ip)\" is not an IPv4 or IPv6 address, e.g. 192.0.2.10 or 2001:db8::10", .usage)
        }
        try makePrivateDirectory(options.directory)
        do {
            return try GatewayPKI.initialize(options)
        } catch {
            throw CommandFailure(error)
        }
    }

    /// The CA of `role` from a directory `create` made.
    static func loadCA(_ role: TunnelIdentity.Role, directory: String) throws(CommandFailure) -> CertificateAuthority {
        do {
            return try GatewayPKI.loadCA(role, directory: directory)
        } catch {
            throw CommandFailure(error)
        }
    }
}

extension CommandFailure {
    /// A missing CA file is a usage error (the --dir given is not a CA directory); the rest are file errors.
    init(_ error: GatewayPKIError) {
        switch error.kind {
        case .missing: self = .usage(error.message, .usage)
        case .file: self = .failed(error.message, .localFile)
        }
    }
}

/// Writes a file a command makes (durably, with `mode`), for the summary it prints.
func writeFile(_ path: String, _ bytes: [UInt8], _ mode: UInt32, _ what: String) throws(CommandFailure)
    -> WrittenFile
{
    do {
        try DurableFile.write(path: path, bytes: bytes, mode: mode)
    } catch {
        throw .failed(oneLine(error), .localFile)
    }
    return WrittenFile(path: path, mode: mode, what: what)
}

/// `SHA256:` + colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it.
public func fingerprintText(_ bytes: [UInt8]) -> String {
    "SHA256:" + bytes.map { String($0, radix: 16, uppercase: true).leftPadded(to: 2) }.joined(separator: ":")
}
