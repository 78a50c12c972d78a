import Foundation
import Testing

@testable import TunnelTLS

/// Issue #9, item 12: the CA certifies no weak key (short RSA, odd curves, DSA).
@Suite("Weak keys")
struct WeakKeyTests {
    /// A private key made by the openssl command line, which makes any type OpenSSL knows.
    static func opensslKey(_ arguments: [String]) throws -> PrivateKey {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["genpkey"] + arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pem = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try PrivateKey(pem: Array(pem))
    }

    static let weak: [[String]] = [
        ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"],
        ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp224r1"],
        ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
    ]
    static let strong: [[String]] = [
        ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    ]

    @Test("RSA below 2048 bits and curves other than P-256/384/521 are refused, with the reason", arguments: weak)
    func weakKeysAreRefused(_ arguments: [String]) throws {
        let ca = try CertificateAuthority.createSelfSigned(
            commonName: "ca", key: .generateP256(), validity: CertificateValidity(now: 0, lifetime: 86_400 * 365 * 100))
        let key = try Self.opensslKey(arguments)
        let csr = try CertificateSigningRequest(key: key, commonName: "node-1")
        let requested = try csr.publicKey()
        #expect(requested.weakness != nil)
        #expect(throws: TLSError.self) {
            try ca.issueClientCertificate(
                for: requested, identity: TunnelIdentity(role: .node, name: "node-1"),
                validity: CertificateValidity(now: 0, lifetime: 3600))
        }
    }

    @Test("RSA 2048 and P-384 are certified", arguments: strong)
    func strongKeysAreCertified(_ arguments: [String]) throws {
        let ca = try CertificateAuthority.createSelfSigned(
            commonName: "ca", key: .generateP256(), validity: CertificateValidity(now: 0, lifetime: 86_400 * 365 * 100))
        let requested = try CertificateSigningRequest(key: Self.opensslKey(arguments), commonName: "node-1").publicKey()
        #expect(requested.weakness == nil)
        _ = try ca.issueClientCertificate(
            for: requested, identity: TunnelIdentity(role: .node, name: "node-1"),
            validity: CertificateValidity(now: 0, lifetime: 3600))
    }
}
