import Foundation
import TunnelTLS

/// A file written by a command, for the summary it prints.
public struct WrittenFile: Sendable, Equatable {
    public let path: String
    /// Permission bits, e.g. 0o600.
    public let mode: UInt32
    public let what: String
}

/// The gateway's PKI directory: two separate CAs, which the gateway uses to sign enrolled nodes'
/// and operators' certificates, and its own server certificate. The gateway creates it on first
/// start; `tunnel ca init` creates it beforehand when the certificate must carry chosen names.
///
/// Layout (all names fixed):
///
/// | file | mode | what |
/// |---|---|---|
/// | node-ca.crt / node-ca.key | 0644 / 0600 | signs node certificates and the gateway's certificate |
/// | operator-ca.crt / operator-ca.key | 0644 / 0600 | signs operator certificates |
/// | gateway.crt / gateway.key | 0644 / 0600 | the gateway's server certificate: leaf, then the node CA |
public enum GatewayPKI {
    public static let nodeCACertificate = "node-ca.crt"
    public static let nodeCAKey = "node-ca.key"
    public static let operatorCACertificate = "operator-ca.crt"
    public static let operatorCAKey = "operator-ca.key"
    public static let gatewayCertificate = "gateway.crt"
    public static let gatewayKey = "gateway.key"
    /// The node CA certificate as handed to nodes and operators (it verifies the gateway).
    public static let gatewayCAFile = "gateway-ca.crt"

    public static let caLifetime: Int64 = 10 * 365 * 86_400 + 2 * 86_400
    public static let defaultGatewayLifetime: Int64 = 365 * 86_400

    public struct InitOptions: Sendable {
        public var directory: String
        /// DNS names for the gateway certificate; with `gatewayIPs` both empty, the defaults are used.
        public var gatewayNames: [String]
        public var gatewayIPs: [String]
        public var force: Bool
        public var gatewayLifetime: Int64
        /// Seconds since 1970; passed in so tests control time.
        public var now: Int64
        /// This machine's host name, for the default SAN (nil: ask the system).
        public var hostName: String?

        public init(
            directory: String, gatewayNames: [String] = [], gatewayIPs: [String] = [], force: Bool = false,
            gatewayLifetime: Int64 = GatewayPKI.defaultGatewayLifetime,
            now: Int64 = Int64(Date().timeIntervalSince1970), hostName: String? = nil
        ) {
            self.directory = directory
            self.gatewayNames = gatewayNames
            self.gatewayIPs = gatewayIPs
            self.force = force
            self.gatewayLifetime = gatewayLifetime
            self.now = now
            self.hostName = hostName
        }
    }

    public struct InitResult: Sendable {
        public let files: [WrittenFile]
        public let nodeCAFingerprint: [UInt8]
        public let operatorCAFingerprint: [UInt8]
        public let gatewayNames: [String]
        public let gatewayIPs: [String]
    }

    /// The SAN entries used when none are given: `localhost`, the host name (if it is a valid
    /// DNS name), `127.0.0.1`, `::1`.
    public static func defaultGatewayNames(hostName: String?) -> (names: [String], ips: [String]) {
        var names = ["localhost"]
        if let hostName, hostName != "localhost", HostPort.isValidDNSName(hostName) { names.append(hostName) }
        return (names, ["127.0.0.1", "::1"])
    }

    /// `tunnel ca init`: creates both CAs and the gateway certificate.
    public static func initialize(_ options: InitOptions) throws(CommandFailure) -> InitResult {
        let dir = options.directory
        let all = [nodeCACertificate, nodeCAKey, operatorCACertificate, operatorCAKey, gatewayCertificate, gatewayKey]
        if !options.force, let existing = all.first(where: { FileManager.default.fileExists(atPath: "\(dir)/\($0)") }) {
            throw .failed(
                "\(dir)/\(existing) already exists: a CA is already set up in \(dir), and replacing it invalidates every certificate it issued; use another --dir, or --force to replace it",
                .localFile)
        }
        var names = options.gatewayNames
        var ips = options.gatewayIPs
        if names.isEmpty && ips.isEmpty {
            (names, ips) = defaultGatewayNames(hostName: options.hostName ?? ProcessInfo.processInfo.hostName)
        }
        for name in names where !HostPort.isValidDNSName(name) {
            throw .usage(
                "--gateway-name: \"\(name)\" is not a DNS name (letters, digits, '-', dots; no wildcards), e.g. gateway.example.com",
                .usage)
        }
        for ip in ips where !(HostPort.isIPv4(ip) || HostPort.isIPv6(ip)) {
            throw .usage(
                "--gateway-ip: \"\(ip)\" is not an IPv4 or IPv6 address, e.g. 192.0.2.10 or 2001:db8::10", .usage)
        }
        try makePrivateDirectory(dir)
        do {
            let caValidity = try CertificateValidity(now: options.now, lifetime: caLifetime)
            let nodeCA = try CertificateAuthority.createSelfSigned(
                commonName: "tunnel node CA", key: try PrivateKey.generateP256(), validity: caValidity)
            let operatorCA = try CertificateAuthority.createSelfSigned(
                commonName: "tunnel operator CA", key: try PrivateKey.generateP256(), validity: caValidity)
            let gatewayKey = try PrivateKey.generateP256()
            let gateway = try nodeCA.issueGatewayCertificate(
                for: try gatewayKey.publicKey(), commonName: names.first ?? ips.first ?? "tunnel gateway",
                dnsNames: names, ipAddresses: ips,
                validity: try CertificateValidity(now: options.now, lifetime: min(options.gatewayLifetime, caLifetime)))
            var files: [WrittenFile] = []
            // Keys first: a crash part-way leaves files that make the next run stop and ask for --force.
            files.append(
                try write(
                    "\(dir)/\(nodeCAKey)", try nodeCA.key.pem(), 0o600,
                    "node CA key (the gateway signs node certificates with it)"))
            files.append(
                try write(
                    "\(dir)/\(operatorCAKey)", try operatorCA.key.pem(), 0o600,
                    "operator CA key (the gateway signs operator certificates with it)"))
            files.append(try write("\(dir)/\(Self.gatewayKey)", try gatewayKey.pem(), 0o600, "gateway key"))
            files.append(
                try write("\(dir)/\(nodeCACertificate)", try nodeCA.certificate.pem(), 0o644, "node CA certificate"))
            files.append(
                try write(
                    "\(dir)/\(operatorCACertificate)", try operatorCA.certificate.pem(), 0o644,
                    "operator CA certificate"))
            files.append(
                try write(
                    "\(dir)/\(gatewayCertificate)", try Certificate.pem(chain: [gateway, nodeCA.certificate]), 0o644,
                    "gateway certificate + node CA"))
            return InitResult(
                files: files, nodeCAFingerprint: nodeCA.certificate.sha256Fingerprint,
                operatorCAFingerprint: operatorCA.certificate.sha256Fingerprint, gatewayNames: names, gatewayIPs: ips)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw .failed(oneLine(error), .localFile)
        }
    }

    /// Loads the CA of `role` from a directory made by `initialize`.
    public static func loadCA(_ role: TunnelIdentity.Role, directory: String) throws(CommandFailure)
        -> CertificateAuthority
    {
        let (crt, key) = role == .operator ? (operatorCACertificate, operatorCAKey) : (nodeCACertificate, nodeCAKey)
        let crtPath = "\(directory)/\(crt)", keyPath = "\(directory)/\(key)"
        for path in [crtPath, keyPath] where !FileManager.default.fileExists(atPath: path) {
            throw .usage(
                "--dir: \(path) does not exist; run `tunnel ca init --dir \(directory)` first, or point --dir at the CA directory",
                .usage)
        }
        do {
            let certificate = try Certificate.fromPEM(try DurableFile.read(path: crtPath), source: crtPath)
            let privateKey = try PrivateKey(pem: try DurableFile.read(path: keyPath), source: keyPath)
            return try CertificateAuthority(
                certificate: certificate, key: privateKey, certificatePath: crtPath, keyPath: keyPath)
        } catch {
            throw .failed(oneLine(error), .localFile)
        }
    }

    static func write(_ path: String, _ bytes: [UInt8], _ mode: UInt32, _ what: String) throws(CommandFailure)
        -> WrittenFile
    {
        do {
            try DurableFile.write(path: path, bytes: bytes, mode: mode)
        } catch {
            throw .failed(oneLine(error), .localFile)
        }
        return WrittenFile(path: path, mode: mode, what: what)
    }
}

/// `SHA256:` + colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it.
public func fingerprintText(_ bytes: [UInt8]) -> String {
    "SHA256:" + bytes.map { String($0, radix: 16, uppercase: true).leftPadded(to: 2) }.joined(separator: ":")
}
