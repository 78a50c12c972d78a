import Foundation
import Testing
import TunnelTLS

@testable import TunnelCommands

/// `openssl verify` as an independent verifier; returns (passed, output).
func opensslVerify(ca: String, certificate: String, purpose: String) throws -> (Bool, String) {
    let (status, output) = try runProgram(
        "/usr/bin/openssl", ["verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca, certificate])
    return (status == 0, output)
}

@Suite struct PKITests {
    let now = Int64(Date().timeIntervalSince1970)

    @Test func initCreatesSeparateCAsAndGatewayChain() throws {
        try withTemporaryDirectory { dir in
            let ca = "\(dir)/ca"
            let result = try CADirectory.create(.init(directory: ca, now: now, hostName: "gw-host"))
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
            #expect(
                chain[0].subjectAlternativeNames.prefix(3).map(\.description) == [
                    "DNS:localhost", "DNS:gw-host", "IP:127.0.0.1",
                ])
            if case .ipAddress(let v6) = chain[0].subjectAlternativeNames[3] {
                #expect(HostPort.isIPv6(v6))
            } else {
                Issue.record("no IPv6 SAN")
            }
            #expect(
                try opensslVerify(ca: "\(ca)/node-ca.crt", certificate: "\(ca)/gateway.crt", purpose: "sslserver").0)
            #expect(
                try !opensslVerify(ca: "\(ca)/operator-ca.crt", certificate: "\(ca)/gateway.crt", purpose: "sslserver")
                    .0)
            #expect(fingerprintText(result.nodeCAFingerprint).hasPrefix("SHA256:"))
        }
    }

    @Test func initRefusesToOverwriteWithoutForce() throws {
        try withTemporaryDirectory { dir in
            let first = try CADirectory.create(.init(directory: dir, now: now, hostName: nil))
            let refused = failure { try CADirectory.create(.init(directory: dir, now: now)) }
            #expect(
                refused?.message
                    == "\(dir)/node-ca.crt already exists: a CA is already set up in \(dir), and replacing it invalidates every certificate it issued; use another --dir, or --force to replace it"
            )
            #expect(refused?.exitCode == 1)
            let unchanged = try Certificate.fromPEM(try DurableFile.read(path: "\(dir)/node-ca.crt"))
            #expect(unchanged.sha256Fingerprint == first.nodeCAFingerprint)

            let forced = try CADirectory.create(.init(directory: dir, force: true, now: now))
            #expect(forced.nodeCAFingerprint != first.nodeCAFingerprint)
            let replaced = try Certificate.fromPEM(try DurableFile.read(path: "\(dir)/node-ca.crt"))
            #expect(replaced.sha256Fingerprint == forced.nodeCAFingerprint)
            #expect(try mode("\(dir)/node-ca.key") == 0o600)
        }
    }

    @Test func initWithExplicitNamesAndBadNames() throws {
        try withTemporaryDirectory { dir in
            let result = try CADirectory.create(
                .init(directory: dir, gatewayNames: ["gw.example.com"], gatewayIPs: ["192.0.2.10"], now: now))
            #expect(result.gatewayNames == ["gw.example.com"] && result.gatewayIPs == ["192.0.2.10"])
            let chain = try Certificate.chainFromPEM(try DurableFile.read(path: "\(dir)/gateway.crt"))
            #expect(chain[0].subjectAlternativeNames.count == 2)
            let badName = failure {
                try CADirectory.create(.init(directory: "\(dir)/x", gatewayNames: ["*.example.com"], now: now))
            }
            #expect(badName?.message.hasPrefix("--gateway-name: \"*.example.com\" is not a DNS name") == true)
            let badIP = failure {
                try CADirectory.create(.init(directory: "\(dir)/x", gatewayIPs: ["300.1.1.1"], now: now))
            }
            #expect(badIP?.message.hasPrefix("--gateway-ip: \"300.1.1.1\" is not an IPv4 or IPv6 address") == true)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/x"))
        }
    }
}
