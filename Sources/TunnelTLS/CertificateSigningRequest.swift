internal import COpenSSL

/// A PKCS#10 certificate signing request (an owned `X509_REQ`).
///
/// Nodes create one for their own key during enrollment and renewal; the CA side checks
/// the self-signature (proof that the requester holds the key) before issuing. The CSR's
/// subject is informational: the issuer decides the identity.
///
/// `@unchecked Sendable`: never mutated after construction.
public final class CertificateSigningRequest: @unchecked Sendable {
    private let pointer: OpaquePointer

    private init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        X509_REQ_free(pointer)
    }

    /// Creates a CSR with subject CN `commonName`, signed by `key` with SHA-256.
    public convenience init(key: PrivateKey, commonName: String) throws {
        let subject = try X509Name(commonName: commonName)
        OpenSSLErrorQueue.clear()
        guard let request = X509_REQ_new() else {
            throw TLSError.openSSL(.openSSL, "could not allocate a CSR")
        }
        self.init(owning: request)
        guard X509_REQ_set_version(request, 0) == 1, // 0 means PKCS#10 v1, the only version
            X509_REQ_set_subject_name(request, subject.pointer) == 1,
            X509_REQ_set_pubkey(request, key.pointer) == 1,
            X509_REQ_sign(request, key.pointer, EVP_sha256()) > 0
        else {
            throw TLSError.openSSL(.openSSL, "could not create a CSR for \"\(commonName)\"")
        }
    }

    public static func fromPEM(_ pem: [UInt8], source: String = "CSR") throws -> CertificateSigningRequest {
        OpenSSLErrorQueue.clear()
        let request = try withReadOnlyBIO(pem) { bio in
            PEM_read_bio_X509_REQ(bio, nil, refusePassphrase, nil)
        }
        guard let request else {
            throw TLSError.openSSL(
                .invalidEncoding, "\(source) is not a PEM certificate request (\"-----BEGIN CERTIFICATE REQUEST-----\")"
            )
        }
        return CertificateSigningRequest(owning: request)
    }

    public static func fromDER(_ der: [UInt8]) throws -> CertificateSigningRequest {
        OpenSSLErrorQueue.clear()
        let request: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509_REQ(nil, &cursor, buffer.count)
        }
        guard let request else {
            throw TLSError.openSSL(.invalidEncoding, "not a DER certificate request")
        }
        return CertificateSigningRequest(owning: request)
    }

    public func pem() throws -> [UInt8] {
        try collectBIOOutput("certificate request") { bio in
            PEM_write_bio_X509_REQ(bio, pointer) == 1
        }
    }

    public func der() throws -> [UInt8] {
        OpenSSLErrorQueue.clear()
        var der: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509_REQ(pointer, &der)
        guard length > 0, let der else {
            throw TLSError.openSSL(.openSSL, "could not DER-encode the certificate request")
        }
        defer { tunnel_openssl_free(der) }
        return Array(UnsafeBufferPointer(start: der, count: Int(length)))
    }

    /// The subject commonName the requester asked for (informational only).
    public var commonName: String? {
        X509Name.commonName(X509_REQ_get_subject_name(pointer))
    }

    /// Throws `.badSignature` unless the CSR is signed by the key it contains.
    public func verifySignature() throws {
        OpenSSLErrorQueue.clear()
        guard let key = X509_REQ_get0_pubkey(pointer), X509_REQ_verify(pointer, key) == 1 else {
            throw TLSError.openSSL(
                .badSignature,
                "certificate request for \"\(commonName ?? "(no name)")\" is not signed by its own key; it was altered or corrupted — create a new one"
            )
        }
    }

    /// The requested public key. Call `verifySignature()` first.
    public func publicKey() throws -> PublicKey {
        OpenSSLErrorQueue.clear()
        guard let key = X509_REQ_get_pubkey(pointer) else {
            throw TLSError.openSSL(.invalidEncoding, "certificate request has no readable public key")
        }
        return PublicKey(owning: key)
    }
}

/// An owned `X509_NAME` holding only a commonName, the one subject attribute we set.
final class X509Name {
    let pointer: OpaquePointer

    /// Upper bound of commonName from RFC 5280 (ub-common-name).
    static let maximumCommonNameLength = 64

    init(commonName: String) throws {
        guard (1...Self.maximumCommonNameLength).contains(commonName.utf8.count) else {
            throw TLSError(
                .invalidArgument, "common name \"\(commonName)\" must be 1–\(Self.maximumCommonNameLength) bytes long")
        }
        OpenSSLErrorQueue.clear()
        guard let name = X509_NAME_new() else {
            throw TLSError.openSSL(.openSSL, "could not allocate an X.509 name")
        }
        pointer = name
        let added = Array(commonName.utf8).withUnsafeBufferPointer { bytes in
            X509_NAME_add_entry_by_NID(
                name, NID_commonName, tunnel_mbstring_utf8(), bytes.baseAddress, Int32(bytes.count), -1, 0)
        }
        guard added == 1 else {
            throw TLSError.openSSL(
                .invalidArgument, "could not use \"\(commonName)\" as a certificate common name")
        }
    }

    deinit {
        X509_NAME_free(pointer)
    }

    /// Reads the first commonName of `name` as UTF-8.
    static func commonName(_ name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { tunnel_openssl_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }
}
