internal import COpenSSL
internal import Glibc

/// The validity window of a certificate to be issued, in seconds since 1970 (UTC).
public struct CertificateValidity: Sendable, Equatable {
    public let notBefore: Int64
    public let notAfter: Int64

    /// - Parameters:
    ///   - now: the issuer's current time; passed in so issuance is testable and clock-free.
    ///   - lifetime: seconds from `now` until expiry (node certificates: 24 h).
    ///   - backdate: seconds subtracted from `now` for notBefore, so a verifier whose clock
    ///     runs a little behind the issuer's does not see a brand-new certificate as not yet valid.
    public init(now: Int64, lifetime: Int64, backdate: Int64 = 300) throws {
        guard lifetime > 0, backdate >= 0 else {
            throw TLSError(
                .invalidArgument,
                "certificate lifetime must be positive and backdate non-negative (got lifetime \(lifetime) s, backdate \(backdate) s)"
            )
        }
        notBefore = now - backdate
        notAfter = now + lifetime
    }
}

/// A CA certificate with its private key: creates itself and issues the project's leaf certificates.
///
/// The project runs two of these — the node CA and the operator CA — so that a certificate's
/// issuer alone already separates the roles.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    public let key: PrivateKey

    /// Pairs an existing CA certificate and key, refusing a key that does not belong to the certificate.
    /// - Parameters: certificatePath, keyPath: shown in the error message only.
    public init(
        certificate: Certificate, key: PrivateKey, certificatePath: String = "CA certificate",
        keyPath: String = "CA key"
    ) throws {
        OpenSSLErrorQueue.clear()
        guard X509_check_private_key(certificate.pointer, key.pointer) == 1 else {
            throw TLSError.openSSL(
                .keyMismatch,
                "CA key \(keyPath) does not belong to CA certificate \(certificatePath); use the key the CA was created with"
            )
        }
        guard X509_check_ca(certificate.pointer) == 1 else {
            throw TLSError(
                .invalidArgument,
                "\(certificatePath) (\(certificate.displayName)) is not a CA certificate (basicConstraints CA:TRUE missing)"
            )
        }
        self.certificate = certificate
        self.key = key
    }

    /// Creates a self-signed CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign+cRLSign
    /// (critical), subjectKeyIdentifier, SHA-256 signature, random serial.
    public static func createSelfSigned(commonName: String, key: PrivateKey, validity: CertificateValidity) throws
        -> CertificateAuthority
    {
        let certificate = try CertificateBuilder.build(
            subject: try X509Name(commonName: commonName),
            publicKey: key.pointer,
            issuer: nil,
            signingKey: key.pointer,
            validity: validity,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ],
            alternativeNames: []
        )
        return CertificateAuthority(trusted: certificate, key: key)
    }

    private init(trusted certificate: Certificate, key: PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// Issues a client certificate for a node or operator: CN = name, exactly one
    /// `tunnel://ROLE/NAME` SAN URI, extendedKeyUsage clientAuth, keyUsage digitalSignature.
    public func issueClientCertificate(
        for publicKey: PublicKey, identity: TunnelIdentity, validity: CertificateValidity
    ) throws -> Certificate {
        try issueLeaf(
            commonName: identity.name,
            publicKey: publicKey,
            validity: validity,
            extendedKeyUsage: "clientAuth",
            alternativeNames: [(GEN_URI, identity.uri)]
        )
    }

    /// Issues the gateway's own certificate: SAN with the DNS names and IP addresses clients dial,
    /// extendedKeyUsage serverAuth+clientAuth, keyUsage digitalSignature.
    public func issueGatewayCertificate(
        for publicKey: PublicKey,
        commonName: String,
        dnsNames: [String],
        ipAddresses: [String],
        validity: CertificateValidity
    ) throws -> Certificate {
        guard !(dnsNames.isEmpty && ipAddresses.isEmpty) else {
            throw TLSError(
                .invalidArgument,
                "gateway certificate \"\(commonName)\" needs at least one DNS name or IP address that clients dial")
        }
        for name in dnsNames where !Self.isValidDNSName(name) {
            throw TLSError(
                .invalidArgument,
                "\"\(name)\" is not a valid DNS name for the gateway certificate (letters, digits, '-', '.'; no wildcards)"
            )
        }
        return try issueLeaf(
            commonName: commonName,
            publicKey: publicKey,
            validity: validity,
            extendedKeyUsage: "serverAuth,clientAuth",
            alternativeNames: dnsNames.map { (GEN_DNS, $0) } + ipAddresses.map { (GEN_IPADD, $0) }
        )
    }

    private func issueLeaf(
        commonName: String,
        publicKey: PublicKey,
        validity: CertificateValidity,
        extendedKeyUsage: String,
        alternativeNames: [(type: Int32, value: String)]
    ) throws -> Certificate {
        // The CA certifies no key an attacker could factor or that a peer's TLS would reject.
        if let weakness = publicKey.weakness {
            throw TLSError(.invalidArgument, "refusing to certify \"\(commonName)\": \(weakness)")
        }
        return try CertificateBuilder.build(
            subject: try X509Name(commonName: commonName),
            publicKey: publicKey.pointer,
            issuer: certificate.pointer,
            signingKey: key.pointer,
            validity: validity,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, extendedKeyUsage),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ],
            alternativeNames: alternativeNames
        )
    }

    private static func isValidDNSName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...253).contains(bytes.count), bytes.first != UInt8(ascii: "."), bytes.first != UInt8(ascii: "-") else {
            return false
        }
        return bytes.allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "-")
                || c == UInt8(ascii: ".")
        }
    }
}

/// Assembles and signs an X.509 v3 certificate.
enum CertificateBuilder {
    /// Bytes of randomness in a serial number: 128 bits, top bit cleared so the DER INTEGER stays positive.
    static let serialByteCount = 16

    /// - Parameter issuer: the CA certificate, or nil for a self-signed certificate.
    static func build(
        subject: X509Name,
        publicKey: OpaquePointer,
        issuer: OpaquePointer?,
        signingKey: OpaquePointer,
        validity: CertificateValidity,
        extensions: [(nid: Int32, value: String)],
        alternativeNames: [(type: Int32, value: String)]
    ) throws -> Certificate {
        guard validity.notAfter > validity.notBefore else {
            throw TLSError(.invalidArgument, "certificate notAfter must lie after notBefore")
        }
        OpenSSLErrorQueue.clear()
        guard let x509 = X509_new() else {
            throw TLSError.openSSL(.openSSL, "could not allocate a certificate")
        }
        do {
            try fill(x509, subject: subject, publicKey: publicKey, issuer: issuer, validity: validity)
            var context = X509V3_CTX()
            X509V3_set_ctx(&context, issuer ?? x509, x509, nil, nil, 0)
            for (nid, value) in extensions {
                guard let extensionPointer = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                    throw TLSError.openSSL(
                        .openSSL, "could not build certificate extension \(String(cString: OBJ_nid2sn(nid))) = \(value)"
                    )
                }
                defer { X509_EXTENSION_free(extensionPointer) }
                guard X509_add_ext(x509, extensionPointer, -1) == 1 else {
                    throw TLSError.openSSL(
                        .openSSL, "could not add certificate extension \(String(cString: OBJ_nid2sn(nid)))")
                }
            }
            if !alternativeNames.isEmpty {
                try addAlternativeNames(alternativeNames, to: x509)
            }
            guard X509_sign(x509, signingKey, EVP_sha256()) > 0 else {
                throw TLSError.openSSL(.openSSL, "could not sign the certificate")
            }
        } catch {
            X509_free(x509)
            throw error
        }
        return try Certificate.adopting(x509)
    }

    private static func fill(
        _ x509: OpaquePointer, subject: X509Name, publicKey: OpaquePointer, issuer: OpaquePointer?,
        validity: CertificateValidity
    ) throws {
        var serial = [UInt8](repeating: 0, count: serialByteCount)
        guard RAND_bytes(&serial, Int32(serial.count)) == 1 else {
            throw TLSError.openSSL(.openSSL, "the random number generator failed while creating a serial number")
        }
        serial[0] &= 0x7f
        guard let serialNumber = BN_bin2bn(serial, Int32(serial.count), nil) else {
            throw TLSError.openSSL(.openSSL, "could not encode the serial number")
        }
        defer { BN_free(serialNumber) }
        let issuerName = issuer.map { X509_get_subject_name($0) } ?? subject.pointer
        guard X509_set_version(x509, 2) == 1, // 2 means X.509 v3, needed for extensions
            BN_to_ASN1_INTEGER(serialNumber, X509_get_serialNumber(x509)) != nil,
            X509_set_subject_name(x509, subject.pointer) == 1,
            X509_set_issuer_name(x509, issuerName) == 1,
            X509_set_pubkey(x509, publicKey) == 1,
            ASN1_TIME_set(X509_getm_notBefore(x509), time_t(validity.notBefore)) != nil,
            ASN1_TIME_set(X509_getm_notAfter(x509), time_t(validity.notAfter)) != nil
        else {
            throw TLSError.openSSL(.openSSL, "could not fill in the certificate fields")
        }
    }

    private static func addAlternativeNames(_ entries: [(type: Int32, value: String)], to x509: OpaquePointer) throws {
        guard let names = GENERAL_NAMES_new() else {
            throw TLSError.openSSL(.openSSL, "could not allocate subjectAltName")
        }
        defer { GENERAL_NAMES_free(names) }
        for (type, value) in entries {
            guard let name = GENERAL_NAME_new() else {
                throw TLSError.openSSL(.openSSL, "could not allocate a subjectAltName entry")
            }
            let payload: UnsafeMutableRawPointer?
            if type == GEN_IPADD {
                payload = a2i_IPADDRESS(value).map { UnsafeMutableRawPointer($0) }
                if payload == nil {
                    GENERAL_NAME_free(name)
                    throw TLSError.openSSL(.invalidArgument, "\"\(value)\" is not an IPv4 or IPv6 address")
                }
            } else {
                let string = ASN1_IA5STRING_new()
                if let string, ASN1_STRING_set(string, value, Int32(value.utf8.count)) == 1 {
                    payload = UnsafeMutableRawPointer(string)
                } else {
                    ASN1_IA5STRING_free(string)
                    GENERAL_NAME_free(name)
                    throw TLSError.openSSL(.openSSL, "could not encode subjectAltName \"\(value)\"")
                }
            }
            GENERAL_NAME_set0_value(name, type, payload)
            guard tunnel_sk_GENERAL_NAME_push(names, name) > 0 else {
                GENERAL_NAME_free(name)
                throw TLSError.openSSL(.openSSL, "could not add a subjectAltName entry")
            }
        }
        guard X509_add1_ext_i2d(x509, NID_subject_alt_name, UnsafeMutableRawPointer(names), 0, 0) == 1 else {
            throw TLSError.openSSL(.openSSL, "could not add the subjectAltName extension")
        }
    }
}
