import Foundation
import TunnelTLS
import TunnelText

/// A file written by a command, for the summary it prints.
public struct WrittenFile: Sendable, Equatable {
    public let path: String
    /// Permission bits, e.g. 0o600.
    public let mode: UInt32
    public let what: String

    public init(path: String, mode: UInt32, what: String) {
        self.path = path
        self.mode = mode
        self.what = what
    }
}

/// Why the PKI directory could not be made or read; `message` names the file and the fix.
public struct GatewayPKIError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// A CA file is not there: the directory given is not a CA directory (yet).
        case missing
        /// A file could not be written or read, or a CA is already there.
        case file
    }

    public let message: String
    public let kind: Kind
    public var description: String { message }
}

/// The gateway's PKI directory: two separate CAs, which the gateway uses to sign enrolled nodes'
/// and operators' certificates, and its own server certificate. The gateway creates it on first
/// start (`isPresent`, `initialize`); `tunnel ca init` creates it beforehand when the
/// certificate must carry chosen names.
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
        if let hostName, hostName != "localhost", DNSName.isValid(hostName) { names.append(hostName) }
        return (names, ["127.0.0.1", "::1"])
    }

    /// Whether `directory` holds a PKI already; the gateway's first start creates one when not.
    public static func isPresent(directory: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/\(nodeCACertificate)")
    }

    /// Creates both CAs and the gateway certificate in `directory`, which exists (0700: it holds
    /// the keys). The names and addresses are taken as given (the command checks its flags).
    public static func initialize(_ options: InitOptions) throws(GatewayPKIError) -> InitResult {
        let dir = options.directory
        let all = [nodeCACertificate, nodeCAKey, operatorCACertificate, operatorCAKey, gatewayCertificate, gatewayKey]
        if !options.force, let existing = all.first(where: { FileManager.default.fileExists(atPath: "\(dir)/\($0)") }) {
            throw GatewayPKIError(
                message:
                    "\(dir)/\(existing) already exists: a CA is already set up in \(dir), and replacing it invalidates every certificate it issued; use another --dir, or --force to replace it",
                kind: .file)
        }
        var names = options.gatewayNames
        var ips = options.gatewayIPs
        if names.isEmpty && ips.isEmpty {
            (names, ips) = defaultGatewayNames(hostName: options.hostName ?? ProcessInfo.processInfo.hostName)
        }
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
        } catch let failure as GatewayPKIError {
            throw failure
        } catch {
            throw GatewayPKIError(message: oneLine(error), kind: .file)
        }
    }

    /// Loads the CA of `role` from a directory made by `initialize`.
    public static func loadCA(_ role: TunnelIdentity.Role, directory: String) throws(GatewayPKIError)
        -> CertificateAuthority
    {
        let (crt, key) = role == .operator ? (operatorCACertificate, operatorCAKey) : (nodeCACertificate, nodeCAKey)
        let crtPath = "\(directory)/\(crt)", keyPath = "\(directory)/\(key)"
        for path in [crtPath, keyPath] where !FileManager.default.fileExists(atPath: path) {
            throw GatewayPKIError(
                message:
                    "--dir: \(path) does not exist; run `tunnel ca init --dir \(directory)` first, or point --dir at the CA directory",
                kind: .missing)
        }
        do {
            let certificate = try Certificate.fromPEM(try DurableFile.read(path: crtPath), source: crtPath)
            let privateKey = try PrivateKey(pem: try DurableFile.read(path: keyPath), source: keyPath)
            return try CertificateAuthority(
                certificate: certificate, key: privateKey, certificatePath: crtPath, keyPath: keyPath)
        } catch {
            throw GatewayPKIError(message: oneLine(error), kind: .file)
        }
    }

    private static func write(_ path: String, _ bytes: [UInt8], _ mode: UInt32, _ what: String)
        throws(GatewayPKIError) -> WrittenFile
    {
        do {
            try DurableFile.write(path: path, bytes: bytes, mode: mode)
        } catch {
            throw GatewayPKIError(message: oneLine(error), kind: .file)
        }
        return WrittenFile(path: path, mode: mode, what: what)
    }
}
