import Foundation
import Testing
import TunnelTLS
@testable import TunnelCommands

/// `openssl verify` as an independent verifier; returns (passed, output).
func opensslVerify(ca: String, certificate: String, purpose: String) throws -> (Bool, String) {
    let (status, output) = try runProgram("/usr/bin/openssl", ["verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca, certificate])
    return (status == 0, output)
}

@Suite struct PKITests {
    let now = Int64(Date().timeIntervalSince1970)

    @Test func initCreatesSeparateCAsAndGatewayChain() throws {
        try withTemporaryDirectory { dir in
            let ca = "\(dir)/ca"
            let result = try GatewayPKI.initialize(.init(directory: ca, now: now, hostName: "gw-host"))
            #expect(result.gatewayNames == ["localhost", "gw-host"])
            #expect(result.gatewayIPs == ["127.0.0.1", "::1"])
            for key in ["node-ca.key", "operator-ca.key", "gateway.key"] { #expect(try mode("\(ca)/\(key)") == 0o600) }
            for crt in ["node-ca.crt", "operator-ca.crt", "gateway.crt"] { #expect(try mode("\(ca)/\(crt)") == 0o644) }
            #expect(try mode(ca) == 0o700)

            let nodeCA = try Certificate.fromPEM(try DurableFile.read(path: "\(ca)/node-ca.crt"))
            let operatorCA = try Certificate.fromPEM(try DurableFile.read(path: "\(ca)/operator-ca.crt"))
            #expect(nodeCA.sha256Fingerprint == result.nodeCAFingerprint)
            #expect(nodeCA.sha256Fingerprint != operatorCA.sha256Fingerprint)
            #expect(nodeCA.notAfter - now >= 10 * 365 * 86_400)

            let chain = try Certificate.chainFromPEM(try DurableFile.read(path: "\(ca)/gateway.crt"))
            #expect(chain.count == 2)
            #expect(chain[1].sha256Fingerprint == nodeCA.sha256Fingerprint)
            #expect(chain[0].subjectAlternativeNames.count == 4)
            #expect(chain[0].subjectAlternativeNames.prefix(3).map(\.description) == ["DNS:localhost", "DNS:gw-host", "IP:127.0.0.1"])
            if case .ipAddress(let v6) = chain[0].subjectAlternativeNames[3] { #expect(HostPort.isIPv6(v6)) } else { Issue.record("no IPv6 SAN") }
            #expect(try opensslVerify(ca: "\(ca)/node-ca.crt", certificate: "\(ca)/gateway.crt", purpose: "sslserver").0)
            #expect(try !opensslVerify(ca: "\(ca)/operator-ca.crt", certificate: "\(ca)/gateway.crt", purpose: "sslserver").0)
            #expect(fingerprintText(result.nodeCAFingerprint).hasPrefix("SHA256:"))
        }
    }

    @Test func initRefusesToOverwriteWithoutForce() throws {
        try withTemporaryDirectory { dir in
            let first = try GatewayPKI.initialize(.init(directory: dir, now: now, hostName: nil))
            let refused = failure { try GatewayPKI.initialize(.init(directory: dir, now: now)) }
            #expect(refused?.message == "\(dir)/node-ca.crt already exists: a CA is already set up in \(dir), and replacing it invalidates every certificate it issued; use another --dir, or --force to replace it")
            #expect(refused?.exitCode == 1)
            let unchanged = try Certificate.fromPEM(try DurableFile.read(path: "\(dir)/node-ca.crt"))
            #expect(unchanged.sha256Fingerprint == first.nodeCAFingerprint)

            let forced = try GatewayPKI.initialize(.init(directory: dir, force: true, now: now))
            #expect(forced.nodeCAFingerprint != first.nodeCAFingerprint)
            let replaced = try Certificate.fromPEM(try DurableFile.read(path: "\(dir)/node-ca.crt"))
            #expect(replaced.sha256Fingerprint == forced.nodeCAFingerprint)
            #expect(try mode("\(dir)/node-ca.key") == 0o600)
        }
    }

    @Test func initWithExplicitNamesAndBadNames() throws {
        try withTemporaryDirectory { dir in
            let result = try GatewayPKI.initialize(.init(directory: dir, gatewayNames: ["gw.example.com"], gatewayIPs: ["192.0.2.10"], now: now))
            #expect(result.gatewayNames == ["gw.example.com"] && result.gatewayIPs == ["192.0.2.10"])
            let chain = try Certificate.chainFromPEM(try DurableFile.read(path: "\(dir)/gateway.crt"))
            #expect(chain[0].subjectAlternativeNames.count == 2)
            let badName = failure { try GatewayPKI.initialize(.init(directory: "\(dir)/x", gatewayNames: ["*.example.com"], now: now)) }
            #expect(badName?.message.hasPrefix("--gateway-name: \"*.example.com\" is not a DNS name") == true)
            let badIP = failure { try GatewayPKI.initialize(.init(directory: "\(dir)/x", gatewayIPs: ["300.1.1.1"], now: now)) }
            #expect(badIP?.message.hasPrefix("--gateway-ip: \"300.1.1.1\" is not an IPv4 or IPv6 address") == true)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/x"))
        }
    }

    @Test func issueNodeRoundTrip() throws {
        try withTemporaryDirectory { dir in
            let ca = "\(dir)/ca", out = "\(dir)/out"
            _ = try GatewayPKI.initialize(.init(directory: ca, now: now))
            let (issued, files) = try GatewayPKI.issueNode(name: "node-17", caDirectory: ca, outputDirectory: out, lifetime: 720 * 3600, now: now)
            #expect(files.map(\.path) == ["\(out)/node-17.key", "\(out)/node-17.crt", "\(out)/gateway-ca.crt"])
            #expect(try mode("\(out)/node-17.key") == 0o600)
            #expect(try mode("\(out)/node-17.crt") == 0o644)
            #expect(try mode("\(out)/gateway-ca.crt") == 0o644)

            let certificate = try Certificate.fromPEM(try DurableFile.read(path: "\(out)/node-17.crt"))
            #expect(try certificate.tunnelIdentity() == TunnelIdentity(role: .node, name: "node-17"))
            #expect(certificate.notAfter == now + 720 * 3600)
            let key = try PrivateKey(pem: try DurableFile.read(path: "\(out)/node-17.key"))
            #expect(try key.publicKey().der() == certificate.publicKey().der())
            #expect(issued.identity.uri == "tunnel://node/node-17")
            // gateway-ca.crt is the node CA, which verifies the gateway.
            #expect(try DurableFile.read(path: "\(out)/gateway-ca.crt") == DurableFile.read(path: "\(ca)/node-ca.crt"))

            let good = try opensslVerify(ca: "\(ca)/node-ca.crt", certificate: "\(out)/node-17.crt", purpose: "sslclient")
            #expect(good.0, "\(good.1)")
            let wrongCA = try opensslVerify(ca: "\(ca)/operator-ca.crt", certificate: "\(out)/node-17.crt", purpose: "sslclient")
            #expect(!wrongCA.0)
            // A client certificate cannot pose as the gateway.
            #expect(try !opensslVerify(ca: "\(ca)/node-ca.crt", certificate: "\(out)/node-17.crt", purpose: "sslserver").0)
        }
    }

    @Test func issueOperatorIsSignedByTheOperatorCAOnly() throws {
        try withTemporaryDirectory { dir in
            _ = try GatewayPKI.initialize(.init(directory: dir, now: now))
            let (issued, file) = try GatewayPKI.issueOperatorBundle(name: "alice", caDirectory: dir, gateway: try HostPort.parse("gw.example.com:7443"),
                                                                   serverName: "gw.internal", outputPath: "\(dir)/b/alice.yaml", now: now)
            #expect(try mode(file.path) == 0o600)
            #expect(issued.identity == (try TunnelIdentity(role: .operator, name: "alice")))
            let text = try String(contentsOfFile: file.path, encoding: .utf8)
            #expect(text.hasPrefix("# tunnel operator bundle for tunnel://operator/alice"))
            #expect(text.contains("THIS FILE CONTAINS A PRIVATE KEY"))
            let bundle = try OperatorBundle.parse(text, source: file.path)
            #expect(bundle.gateway == HostPort(host: "gw.example.com", port: 7443))
            #expect(bundle.serverName == "gw.internal")
            #expect(bundle.gatewayCAPEM == String(decoding: try DurableFile.read(path: "\(dir)/node-ca.crt"), as: UTF8.self))
            try writeFile("\(dir)/alice.crt", bundle.certificatePEM)
            #expect(try opensslVerify(ca: "\(dir)/operator-ca.crt", certificate: "\(dir)/alice.crt", purpose: "sslclient").0)
            #expect(try !opensslVerify(ca: "\(dir)/node-ca.crt", certificate: "\(dir)/alice.crt", purpose: "sslclient").0)
        }
    }

    @Test func issueErrors() throws {
        try withTemporaryDirectory { dir in
            let noCA = failure { try GatewayPKI.issueNode(name: "n1", caDirectory: dir, outputDirectory: dir) }
            #expect(noCA?.message == "--dir: \(dir)/node-ca.crt does not exist; run `tunnel ca init --dir \(dir)` first, or point --dir at the CA directory")
            _ = try GatewayPKI.initialize(.init(directory: dir, now: now))
            for bad in ["Node-17", "node_17", "-node", "node.17", "", String(repeating: "a", count: 64)] {
                let f = failure { try GatewayPKI.issueNode(name: bad, caDirectory: dir, outputDirectory: dir) }
                #expect(f?.message.hasPrefix("invalid node name \"\(bad)\": use 1–63 lower-case letters") == true)
                #expect(f?.exitCode == 2)
            }
            let tooLong = failure { try GatewayPKI.issueNode(name: "n1", caDirectory: dir, outputDirectory: dir, lifetime: 20 * 365 * 86_400, now: now) }
            #expect(tooLong?.message.hasPrefix("--lifetime: the certificate would outlive the node CA") == true)
            let badOperator = failure {
                try GatewayPKI.issueOperatorBundle(name: "al ice", caDirectory: dir, gateway: HostPort(host: "gw", port: 1), serverName: nil, outputPath: "\(dir)/x.yaml")
            }
            #expect(badOperator?.message.hasPrefix("invalid operator name \"al ice\"") == true)
        }
    }
}
