import COpenSSL
import Testing

@testable import TunnelTLS

@Suite("Keys, certificates and CSRs")
struct X509Tests {
    @Test func sha256MatchesTheStandardVector() {
        #expect(
            Hex.encode(SHA256.hash(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.decode("00ffA0") == [0x00, 0xff, 0xa0])
        #expect(Hex.decode("0g") == nil)
    }

    @Test func privateKeyPEMRoundTripsAsPKCS8() throws {
        let key = try PrivateKey.generateP256()
        let pem = try key.pem()
        #expect(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let decoded = try PrivateKey(pem: pem)
        #expect(try decoded.pem() == pem)
        #expect(try decoded.publicKey().der() == key.publicKey().der())
        #expect(try PublicKey(pem: key.publicKey().pem()).der() == key.publicKey().der())
        #expect(try PrivateKey.generateP256().publicKey().der() != key.publicKey().der())
    }

    @Test func garbageIsRefusedWithTheSourceNamed() throws {
        let error = #expect(throws: TLSError.self) {
            try PrivateKey(pem: Array("not a key".utf8), source: "/x/node.key")
        }
        #expect(error?.code == .invalidEncoding)
        #expect(error?.message.contains("/x/node.key") == true)
        let certificateError = #expect(throws: TLSError.self) {
            try Certificate.chainFromPEM(Array("junk".utf8), source: "/x/node.crt")
        }
        #expect(certificateError?.code == .invalidEncoding)
        #expect(certificateError?.message.contains("/x/node.crt") == true)
    }

    @Test func certificateAuthorityHasTheRequiredExtensions() throws {
        let now = currentTime()
        let validity = try CertificateValidity(now: now, lifetime: 10 * day, backdate: 60)
        let ca = try CertificateAuthority.createSelfSigned(
            commonName: "Tunnel Node CA", key: .generateP256(), validity: validity)
        let certificate = ca.certificate
        #expect(certificate.commonName == "Tunnel Node CA")
        #expect(certificate.notBefore == now - 60)
        #expect(certificate.notAfter == now + 10 * day)
        #expect(X509_check_ca(certificate.pointer) == 1)
        #expect(
            X509_get_extension_flags(certificate.pointer) & UInt32(EXFLAG_CRITICAL) == 0,
            "no unknown critical extensions")
        #expect(X509_get0_subject_key_id(certificate.pointer) != nil)
        #expect(X509_get_key_usage(certificate.pointer) == UInt32(KU_KEY_CERT_SIGN | KU_CRL_SIGN))
        #expect(X509_check_issued(certificate.pointer, certificate.pointer) == X509_V_OK)
        #expect(throws: TLSError.self) { try certificate.tunnelIdentity() }
    }

    @Test func clientCertificateCarriesIdentityAndFields() throws {
        let now = currentTime()
        let ca = try CertificateAuthority.createSelfSigned(
            commonName: "Tunnel Node CA", key: .generateP256(), validity: .init(now: now, lifetime: 100 * day))
        let key = try PrivateKey.generateP256()
        let identity = try TunnelIdentity(role: .node, name: "node-17")
        let validity = try CertificateValidity(now: now, lifetime: day, backdate: 300)
        let certificate = try ca.issueClientCertificate(for: key.publicKey(), identity: identity, validity: validity)
        let other = try ca.issueClientCertificate(for: key.publicKey(), identity: identity, validity: validity)

        #expect(try certificate.tunnelIdentity() == identity)
        #expect(certificate.commonName == "node-17")
        #expect(certificate.subjectAlternativeNames == [.uri("tunnel://node/node-17")])
        #expect(certificate.notBefore == now - 300)
        #expect(certificate.notAfter == now + day)
        #expect(certificate.serialNumberHex != other.serialNumberHex)
        #expect(certificate.serialNumberHex.count > 20 && certificate.serialNumberHex.count <= 32)
        #expect(try certificate.sha256Fingerprint == SHA256.hash(certificate.der()))
        #expect(try certificate.publicKey().der() == key.publicKey().der())
        #expect(X509_check_issued(ca.certificate.pointer, certificate.pointer) == X509_V_OK)
        #expect(X509_check_ca(certificate.pointer) == 0)
        #expect(X509_get_extended_key_usage(certificate.pointer) == UInt32(XKU_SSL_CLIENT))
        #expect(X509_get_key_usage(certificate.pointer) == UInt32(KU_DIGITAL_SIGNATURE))
        #expect(X509_get0_authority_key_id(certificate.pointer) != nil)
    }

    @Test func gatewayCertificateNamesHostsAndServesBothPurposes() throws {
        let now = currentTime()
        let ca = try CertificateAuthority.createSelfSigned(
            commonName: "Tunnel Gateway CA", key: .generateP256(), validity: .init(now: now, lifetime: 100 * day))
        let certificate = try ca.issueGatewayCertificate(
            for: PrivateKey.generateP256().publicKey(), commonName: "gateway",
            dnsNames: ["gw.example"], ipAddresses: ["192.0.2.7", "2001:db8::1"],
            validity: .init(now: now, lifetime: day)
        )
        #expect(
            certificate.subjectAlternativeNames == [
                .dns("gw.example"), .ipAddress("192.0.2.7"), .ipAddress("2001:db8::1"),
            ])
        #expect(X509_get_extended_key_usage(certificate.pointer) == UInt32(XKU_SSL_SERVER | XKU_SSL_CLIENT))
        #expect(throws: TLSError.self) { try certificate.tunnelIdentity() }
        #expect(throws: TLSError.self) {
            try ca.issueGatewayCertificate(
                for: PrivateKey.generateP256().publicKey(), commonName: "gateway", dnsNames: [],
                ipAddresses: ["not-an-ip"], validity: .init(now: now, lifetime: day))
        }
    }

    @Test func identityURIsAreParsedStrictly() throws {
        #expect(TunnelIdentity(uri: "tunnel://operator/alice") == (try TunnelIdentity(role: .operator, name: "alice")))
        for bad in [
            "tunnel://node/", "tunnel://admin/x", "tunnel://node/a/b", "http://node/x", "tunnel://node/-x",
            "tunnel://node/a b",
        ] {
            #expect(TunnelIdentity(uri: bad) == nil, "\(bad) must be refused")
        }
        #expect(throws: TLSError.self) { try TunnelIdentity(role: .node, name: String(repeating: "a", count: 65)) }
    }

    @Test func certificateWithTwoTunnelURIsHasNoIdentity() throws {
        let now = currentTime()
        let key = try PrivateKey.generateP256()
        let certificate = try CertificateBuilder.build(
            subject: X509Name(commonName: "node-17"), publicKey: key.pointer, issuer: nil, signingKey: key.pointer,
            validity: .init(now: now, lifetime: day), extensions: [],
            alternativeNames: [(GEN_URI, "tunnel://node/node-17"), (GEN_URI, "tunnel://operator/root")]
        )
        let error = #expect(throws: TLSError.self) { try certificate.tunnelIdentity() }
        #expect(error?.code == .invalidIdentity)
        #expect(error?.message.contains("tunnel://operator/root") == true)
    }

    @Test func certificateAndChainPEMRoundTrip() throws {
        let pki = try PKI()
        let gateway = try pki.gatewayIdentity()
        let pem = try Certificate.pem(chain: gateway.chain)
        let decoded = try Certificate.chainFromPEM(pem)
        #expect(decoded.count == 2)
        #expect(decoded.map(\.sha256Fingerprint) == gateway.chain.map(\.sha256Fingerprint))
        #expect(try Certificate.fromPEM(pem).sha256Fingerprint == gateway.chain[0].sha256Fingerprint)
        #expect(try Certificate.fromDER(gateway.chain[1].der()).serialNumberHex == gateway.chain[1].serialNumberHex)
        // A truncated second block must not silently yield a one-certificate chain.
        #expect(throws: TLSError.self) { try Certificate.chainFromPEM(Array(pem.dropLast(40))) }
    }

    @Test func csrRoundTripsAndItsSignatureIsChecked() throws {
        let key = try PrivateKey.generateP256()
        let request = try CertificateSigningRequest(key: key, commonName: "node-17")
        let decoded = try CertificateSigningRequest.fromPEM(request.pem())
        try decoded.verifySignature()
        #expect(decoded.commonName == "node-17")
        #expect(try decoded.publicKey().der() == key.publicKey().der())

        var der = try request.der()
        let name = Array("node-17".utf8)
        let at = try #require((0...(der.count - name.count)).first { Array(der[$0..<$0 + name.count]) == name })
        der[at + name.count - 1] = UInt8(ascii: "8")
        let tampered = try CertificateSigningRequest.fromDER(der)
        #expect(tampered.commonName == "node-18")
        let error = #expect(throws: TLSError.self) { try tampered.verifySignature() }
        #expect(error?.code == .badSignature)
    }

    @Test func certificateAuthorityRefusesAForeignKey() throws {
        let pki = try PKI()
        let error = #expect(throws: TLSError.self) {
            try CertificateAuthority(
                certificate: pki.nodeCA.certificate, key: pki.operatorCA.key, certificatePath: "/ca/node.crt",
                keyPath: "/ca/operator.key")
        }
        #expect(error?.code == .keyMismatch)
        #expect(error?.message.contains("/ca/node.crt") == true && error?.message.contains("/ca/operator.key") == true)
        #expect(throws: Never.self) {
            try CertificateAuthority(certificate: pki.nodeCA.certificate, key: pki.nodeCA.key)
        }
    }
}
