import Foundation
import Testing
import TunnelTLS

@testable import TunnelCommands

@Suite struct LoginTests {
    let now = Int64(Date().timeIntervalSince1970)

    func makeBundle(_ dir: String, now: Int64? = nil, lifetime: Int64 = 3600, serverName: String? = nil) throws
        -> String
    {
        if !FileManager.default.fileExists(atPath: "\(dir)/ca/node-ca.crt") {
            _ = try CADirectory.create(.init(directory: "\(dir)/ca", now: self.now - 30 * 86_400))
        }
        let path = "\(dir)/alice.yaml"
        _ = try TestIssuer.issueOperatorBundle(
            name: "alice", caDirectory: "\(dir)/ca", gateway: HostPort(host: "gw.example.com", port: 7443),
            serverName: serverName, outputPath: path, lifetime: lifetime, now: now ?? self.now)
        return path
    }

    @Test func bundleToLoginRoundTrip() throws {
        try withTemporaryDirectory { dir in
            let bundle = try makeBundle(dir, serverName: "gw.internal")
            let config = "\(dir)/home/.config/tunnel"
            let result = try OperatorLogin.install(bundlePath: bundle, configDirectory: config, now: now)
            #expect(result.identity == (try TunnelIdentity(role: .operator, name: "alice")))
            #expect(result.gateway.description == "gw.example.com:7443")
            #expect(try mode("\(config)/operator.key") == 0o600)
            #expect(try mode("\(config)/operator.crt") == 0o644)
            #expect(try mode("\(config)/gateway-ca.crt") == 0o644)
            #expect(try mode(config) == 0o700)

            // The written operator.yaml is a valid config for the operator schema.
            let settings = try SettingsLoader.load(
                Schemas.operator,
                SettingsInput(configPath: "\(config)/operator.yaml", environment: ["HOME": "\(dir)/home"]))
            let op = try OperatorSettings(settings)
            #expect(op.gateway == HostPort(host: "gw.example.com", port: 7443))
            #expect(op.serverName == "gw.internal")
            #expect(op.cert == "\(config)/operator.crt")
            #expect(op.key == "\(config)/operator.key")
            #expect(op.gatewayCA == "\(config)/gateway-ca.crt")
            // ... and is also found at the default location.
            let byDefault = try SettingsLoader.load(
                Schemas.operator, SettingsInput(environment: ["HOME": "\(dir)/home"]))
            #expect(byDefault.configFile == "\(config)/operator.yaml")

            let cert = try Certificate.fromPEM(try DurableFile.read(path: op.cert))
            let key = try PrivateKey(pem: try DurableFile.read(path: op.key))
            #expect(try cert.publicKey().der() == key.publicKey().der())
            #expect(try DurableFile.read(path: op.gatewayCA) == DurableFile.read(path: "\(dir)/ca/node-ca.crt"))

            let status = try OperatorStatus.describe(op, now: now)
            #expect(
                status.hasPrefix(
                    "identity:    tunnel://operator/alice\ngateway:     gw.example.com:7443 (TLS name gw.internal)\nvalid until: "
                ))
            // Issue #9: a certificate just issued or renewed (for the same short lifetime) needs no renewal yet.
            #expect(!status.contains("tunnel renew"), "\(status)")
            #expect(
                try OperatorStatus.describe(op, now: now + 3600 - 600).hasSuffix(
                    "in the last third of its life: run `tunnel renew`"))

            // Logging in again (renewal) replaces the files.
            #expect(throws: Never.self) {
                try OperatorLogin.install(bundlePath: bundle, configDirectory: config, now: now)
            }
        }
    }

    @Test func defaultConfigDirectory() throws {
        #expect(try OperatorLogin.defaultConfigDirectory(environment: ["HOME": "/home/a"]) == "/home/a/.config/tunnel")
        #expect(
            try OperatorLogin.defaultConfigDirectory(environment: ["HOME": "/home/a", "XDG_CONFIG_HOME": "/x"])
                == "/x/tunnel")
        #expect(throws: CommandFailure.self) { try OperatorLogin.defaultConfigDirectory(environment: [:]) }
    }

    @Test func refusesMismatchedKey() throws {
        try withTemporaryDirectory { dir in
            let path = try makeBundle(dir)
            var bundle = try OperatorBundle.parse(try String(contentsOfFile: path, encoding: .utf8), source: path)
            bundle.keyPEM = String(decoding: try PrivateKey.generateP256().pem(), as: UTF8.self)
            try writeFile(
                path, bundle.render(identity: try TunnelIdentity(role: .operator, name: "alice"), notAfter: now))
            let f = failure { try OperatorLogin.install(bundlePath: path, configDirectory: "\(dir)/cfg", now: now) }
            #expect(f?.message.hasPrefix("\(path): the key does not belong to the certificate (") == true)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/cfg"))
        }
    }

    @Test func refusesNodeCertificate() throws {
        try withTemporaryDirectory { dir in
            _ = try CADirectory.create(.init(directory: "\(dir)/ca", now: now))
            let (node, _) = try TestIssuer.issueNode(
                name: "node-17", caDirectory: "\(dir)/ca", outputDirectory: "\(dir)/n", now: now)
            let bundle = OperatorBundle(
                gateway: HostPort(host: "gw", port: 7443), serverName: nil,
                certificatePEM: String(decoding: try node.certificate.pem(), as: UTF8.self),
                keyPEM: String(decoding: try node.key.pem(), as: UTF8.self),
                gatewayCAPEM: String(decoding: try node.gatewayCA.pem(), as: UTF8.self))
            try writeFile("\(dir)/b.yaml", bundle.render(identity: node.identity, notAfter: node.certificate.notAfter))
            let f = failure {
                try OperatorLogin.install(bundlePath: "\(dir)/b.yaml", configDirectory: "\(dir)/cfg", now: now)
            }
            #expect(
                f?.message
                    == "\(dir)/b.yaml: the certificate is for tunnel://node/node-17, not an operator; ask an admin for an operator bundle (tunnel user add NAME)"
            )
        }
    }

    @Test func refusesExpiredCertificate() throws {
        try withTemporaryDirectory { dir in
            let path = try makeBundle(dir, now: now - 10 * 86_400, lifetime: 3600)
            let f = failure { try OperatorLogin.install(bundlePath: path, configDirectory: "\(dir)/cfg", now: now) }
            #expect(f?.message.hasPrefix("\(path): certificate tunnel://operator/alice expired at ") == true)
            #expect(f?.message.hasSuffix("; ask for a new bundle") == true)
            let early = failure {
                try OperatorLogin.install(bundlePath: try makeBundle(dir), configDirectory: "\(dir)/cfg", now: 0)
            }
            #expect(early?.message.contains("is not valid before") == true)
        }
    }

    @Test func refusesMalformedBundles() throws {
        try withTemporaryDirectory { dir in
            let path = try makeBundle(dir)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            func message(_ text: String) -> String? {
                try! writeFile("\(dir)/bad.yaml", text)
                return failure {
                    try OperatorLogin.install(bundlePath: "\(dir)/bad.yaml", configDirectory: "\(dir)/cfg", now: now)
                }?.message
            }
            #expect(
                message(text.replacingOccurrences(of: "gateway-ca:", with: "gateway_ca:"))?.hasSuffix(
                    "unknown key \"gateway_ca\" (did you mean \"gateway-ca\"?)") == true)
            #expect(
                message(text.replacingOccurrences(of: "gateway: gw.example.com:7443", with: ""))
                    == "\(dir)/bad.yaml: \"gateway\" is missing; this is not a complete operator bundle (an admin makes one with `tunnel user add`)"
            )
            #expect(
                message(text.replacingOccurrences(of: "gateway: gw.example.com:7443", with: "gateway: gw.example.com"))
                    == "\(dir)/bad.yaml:4: gateway: \"gw.example.com\" is not HOST:PORT (e.g. gw.example.com:7443)")
            #expect(
                message(text.replacingOccurrences(of: "BEGIN CERTIFICATE", with: "BEGIN CERTIFICAT"))?.hasPrefix(
                    "\(dir)/bad.yaml: the certificate does not parse") == true)
            #expect(
                message("just text")
                    == "\(dir)/bad.yaml:1: expected KEY: VALUE lines at the top level, not a single value")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/cfg"))
            let missing = failure {
                try OperatorLogin.install(bundlePath: "\(dir)/nope.yaml", configDirectory: "\(dir)/cfg", now: now)
            }
            #expect(missing?.message.contains("\(dir)/nope.yaml") == true)
        }
    }
}
