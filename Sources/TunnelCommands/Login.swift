import Foundation
import TunnelGateway
import TunnelTLS
import TunnelText

/// The file `tunnel user add` writes and `tunnel login` reads: one YAML mapping with
/// `gateway`, optional `server-name`, and the PEM texts `certificate`, `key`, `gateway-ca`.
public struct OperatorBundle: Sendable, Equatable {
    public static let keys = ["gateway", "server-name", "certificate", "key", "gateway-ca"]

    public var gateway: HostPort
    public var serverName: String?
    public var certificatePEM: String
    public var keyPEM: String
    public var gatewayCAPEM: String

    public init(gateway: HostPort, serverName: String?, certificatePEM: String, keyPEM: String, gatewayCAPEM: String) {
        self.gateway = gateway
        self.serverName = serverName
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
        self.gatewayCAPEM = gatewayCAPEM
    }

    /// The bundle as YAML, PEM texts as literal blocks, with a warning header.
    public func render(identity: TunnelIdentity, notAfter: Int64) -> String {
        func block(_ pem: String) -> String {
            pem.split(separator: "\n", omittingEmptySubsequences: true).map { "  \($0)" }.joined(separator: "\n")
        }
        var text = """
            # tunnel operator bundle for \(identity) (certificate valid until \(isoDate(notAfter)))
            # THIS FILE CONTAINS A PRIVATE KEY. Send it over a channel you trust, install it with
            # `tunnel login THIS-FILE`, then delete it.
            gateway: \(gateway)

            """
        if let serverName { text += "server-name: \(serverName)\n" }
        text += "certificate: |\n\(block(certificatePEM))\n"
        text += "key: |\n\(block(keyPEM))\n"
        text += "gateway-ca: |\n\(block(gatewayCAPEM))\n"
        return text
    }

    /// Parses a bundle strictly (unknown keys, missing keys and bad values are one-line errors naming `source`).
    public static func parse(_ text: String, source: String) throws(CommandFailure) -> OperatorBundle {
        let entries = try StrictYAML.parseMapping(text, source: source, allowedKeys: keys, what: "bundle key")
        var values: [String: (String, Int)] = [:]
        for entry in entries {
            guard let value = StrictYAML.scalarText(entry.value) else {
                throw .usage(
                    "\(source):\(entry.line): \(entry.key): expected text, not a \(entry.value.shape)", .bundleInvalid)
            }
            values[entry.key] = (value, entry.line)
        }
        for key in keys where key != "server-name" && values[key] == nil {
            throw .usage(
                "\(source): \"\(key)\" is missing; this is not a complete operator bundle (an admin makes one with `tunnel user add`)",
                .bundleInvalid)
        }
        let gateway: HostPort
        do {
            gateway = try HostPort.parse(values["gateway"]!.0)
        } catch {
            throw .usage("\(source):\(values["gateway"]!.1): gateway: \(error.text)", .bundleInvalid)
        }
        if let (name, line) = values["server-name"], !(HostPort.isValidHost(name) || HostPort.isIPv6(name)) {
            throw .usage("\(source):\(line): server-name: \"\(name)\" is not a host name or IP address", .bundleInvalid)
        }
        return OperatorBundle(
            gateway: gateway, serverName: values["server-name"]?.0, certificatePEM: values["certificate"]!.0,
            keyPEM: values["key"]!.0, gatewayCAPEM: values["gateway-ca"]!.0)
    }
}

/// `tunnel login`: checks an operator bundle and installs it as the operator's config.
public enum OperatorLogin {
    public static let certificateFile = "operator.crt"
    public static let keyFile = "operator.key"
    public static let configFile = "operator.yaml"

    /// `$XDG_CONFIG_HOME/tunnel`, else `$HOME/.config/tunnel`.
    public static func defaultConfigDirectory(environment: [String: String]) throws(CommandFailure) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/tunnel" }
        guard let home = environment["HOME"], home.hasPrefix("/") else {
            throw .usage("neither XDG_CONFIG_HOME nor HOME is set; pass --config-dir", .usage)
        }
        return home + "/.config/tunnel"
    }

    public struct Result: Sendable {
        public let identity: TunnelIdentity
        public let gateway: HostPort
        public let serverName: String?
        public let notAfter: Int64
        public let files: [WrittenFile]
    }

    /// The checks, without writing anything. Each failure is one line naming the bundle.
    public static func validate(_ bundle: OperatorBundle, source: String, now: Int64) throws(CommandFailure) -> (
        TunnelIdentity, Certificate, PrivateKey, Certificate
    ) {
        let certificate: Certificate, key: PrivateKey, ca: [Certificate]
        do {
            certificate = try Certificate.fromPEM(Array(bundle.certificatePEM.utf8), source: "\(source) certificate")
        } catch {
            throw .usage(
                "\(source): the certificate does not parse (\(oneLine(error))); ask for a new bundle", .bundleInvalid)
        }
        do { key = try PrivateKey(pem: Array(bundle.keyPEM.utf8), source: "\(source) key") } catch {
            throw .usage("\(source): the key does not parse (\(oneLine(error))); ask for a new bundle", .bundleInvalid)
        }
        do { ca = try Certificate.chainFromPEM(Array(bundle.gatewayCAPEM.utf8), source: "\(source) gateway-ca") } catch
        {
            throw .usage(
                "\(source): gateway-ca does not parse (\(oneLine(error))); ask for a new bundle", .bundleInvalid)
        }
        guard ca.count == 1, let gatewayCA = ca.first else {
            throw .usage(
                "\(source): gateway-ca must hold exactly one certificate (the node CA), found \(ca.count)",
                .bundleInvalid)
        }
        let matches: Bool
        do { matches = try certificate.publicKey().der() == key.publicKey().der() } catch {
            throw .usage("\(source): could not compare key and certificate: \(oneLine(error))", .bundleInvalid)
        }
        guard matches else {
            throw .usage(
                "\(source): the key does not belong to the certificate (\(certificate.displayName)); the bundle was assembled wrongly, ask for a new one",
                .bundleInvalid)
        }
        let identity: TunnelIdentity
        do { identity = try certificate.tunnelIdentity() } catch {
            throw .usage("\(source): the certificate carries no tunnel identity (\(oneLine(error)))", .bundleInvalid)
        }
        guard identity.role == .operator else {
            throw .usage(
                "\(source): the certificate is for \(identity), not an operator; ask an admin for an operator bundle (tunnel user add NAME)",
                .bundleInvalid)
        }
        guard now < certificate.notAfter else {
            throw .usage(
                "\(source): certificate \(identity) expired at \(isoDate(certificate.notAfter)) (this machine's clock reads \(isoDate(now))); ask for a new bundle",
                .certificateExpired)
        }
        guard now >= certificate.notBefore else {
            throw .usage(
                "\(source): certificate \(identity) is not valid before \(isoDate(certificate.notBefore)) and this machine's clock reads \(isoDate(now)); fix the clock (enable NTP)",
                .clockSkew)
        }
        return (identity, certificate, key, gatewayCA)
    }

    /// Reads, validates and installs `bundlePath` into `configDirectory` (created 0700).
    ///
    /// Writes operator.key (0600), operator.crt (0644), gateway-ca.crt (0644) and operator.yaml
    /// (0644, no secrets; absolute paths), each durably. Existing files are replaced: logging in
    /// again with a renewed bundle is the normal way to renew.
    public static func install(
        bundlePath: String, configDirectory: String, now: Int64 = Int64(Date().timeIntervalSince1970)
    ) throws(CommandFailure) -> Result {
        let bytes: [UInt8]
        do { bytes = try DurableFile.read(path: bundlePath, limit: 256 * 1024) } catch {
            throw .usage(oneLine(error), .localFile)
        }
        let bundle = try OperatorBundle.parse(String(decoding: bytes, as: UTF8.self), source: bundlePath)
        let (identity, certificate, key, gatewayCA) = try validate(bundle, source: bundlePath, now: now)

        let dir =
            configDirectory.hasPrefix("/")
            ? configDirectory : FileManager.default.currentDirectoryPath + "/" + configDirectory
        try makePrivateDirectory(dir)
        let crt = "\(dir)/\(certificateFile)", keyPath = "\(dir)/\(keyFile)",
            caPath = "\(dir)/\(GatewayPKI.gatewayCAFile)"
        var config = "# Written by `tunnel login` for \(identity) from \(bundlePath).\n"
        config += "gateway: \(yamlQuoted(bundle.gateway.description))\n"
        if let serverName = bundle.serverName { config += "server-name: \(yamlQuoted(serverName))\n" }
        config += "cert: \(yamlQuoted(crt))\nkey: \(yamlQuoted(keyPath))\ngateway-ca: \(yamlQuoted(caPath))\n"
        do {
            let files = [
                try writeFile(keyPath, try key.pem(), 0o600, "operator key"),
                try writeFile(crt, try certificate.pem(), 0o644, "operator certificate \(identity)"),
                try writeFile(caPath, try gatewayCA.pem(), 0o644, "CA that verifies the gateway"),
                try writeFile("\(dir)/\(configFile)", Array(config.utf8), 0o644, "operator settings"),
            ]
            return Result(
                identity: identity, gateway: bundle.gateway, serverName: bundle.serverName,
                notAfter: certificate.notAfter, files: files)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw .failed(oneLine(error), .localFile)
        }
    }
}
