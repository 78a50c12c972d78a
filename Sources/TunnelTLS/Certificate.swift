internal import COpenSSL
internal import Glibc

/// An X.509 certificate (an owned `X509`) with its commonly needed fields read once.
///
/// `@unchecked Sendable`: never mutated after construction; OpenSSL 3 guards the lazily
/// computed caches inside `X509` with its own lock, so concurrent reads are safe.
public final class Certificate: @unchecked Sendable, CustomStringConvertible {
    let pointer: OpaquePointer

    /// Subject commonName, if present (informational; identity comes from `tunnelIdentity()`).
    public let commonName: String?
    /// Serial number as lowercase hex without leading zeros.
    public let serialNumberHex: String
    /// Start of validity, seconds since 1970 (UTC).
    public let notBefore: Int64
    /// End of validity, seconds since 1970 (UTC).
    public let notAfter: Int64
    /// SHA-256 of the DER encoding: the value used for CA pins.
    public let sha256Fingerprint: [UInt8]

    private init(owning pointer: OpaquePointer, fields: Fields) {
        self.pointer = pointer
        self.commonName = fields.commonName
        self.serialNumberHex = fields.serialNumberHex
        self.notBefore = fields.notBefore
        self.notAfter = fields.notAfter
        self.sha256Fingerprint = fields.sha256Fingerprint
    }

    deinit {
        X509_free(pointer)
    }

    /// Takes ownership of `pointer` (freeing it if its fields cannot be read).
    static func adopting(_ pointer: OpaquePointer) throws -> Certificate {
        do {
            return Certificate(owning: pointer, fields: try Fields(pointer))
        } catch {
            X509_free(pointer)
            throw error
        }
    }

    /// Wraps a certificate owned by OpenSSL (e.g. inside a verified chain) by taking a reference.
    static func retaining(_ pointer: OpaquePointer) throws -> Certificate {
        X509_up_ref(pointer)
        return try adopting(pointer)
    }

    /// Decodes the first PEM certificate in `pem`.
    /// - Parameter source: a file path or other origin, used only in error messages.
    public static func fromPEM(_ pem: [UInt8], source: String = "certificate") throws -> Certificate {
        guard let first = try chainFromPEM(pem, source: source).first else {
            throw TLSError(.invalidEncoding, "\(source) contains no PEM certificate")
        }
        return first
    }

    /// Decodes every PEM certificate in `pem`, in file order (leaf first for a chain file).
    /// Throws if there is none or if any block is malformed.
    public static func chainFromPEM(_ pem: [UInt8], source: String = "certificate chain") throws -> [Certificate] {
        OpenSSLErrorQueue.clear()
        let chain: [Certificate] = try withReadOnlyBIO(pem) { bio in
            var chain: [Certificate] = []
            while let x509 = PEM_read_bio_X509(bio, nil, refusePassphrase, nil) {
                chain.append(try adopting(x509))
            }
            // Reading stops with PEM_R_NO_START_LINE at the end of input; anything else is a bad block.
            let (entries, texts) = OpenSSLErrorQueue.drain()
            let endOfInput = entries.last.map { $0.library == ERR_LIB_PEM && $0.reason == PEM_R_NO_START_LINE } ?? true
            if !endOfInput || chain.isEmpty {
                throw TLSError(
                    .invalidEncoding,
                    "\(source) is not a valid PEM certificate file (expected \"-----BEGIN CERTIFICATE-----\" blocks)",
                    openSSLErrors: texts
                )
            }
            return chain
        }
        return chain
    }

    /// Decodes one DER certificate.
    public static func fromDER(_ der: [UInt8]) throws -> Certificate {
        OpenSSLErrorQueue.clear()
        let x509: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let x509 else {
            throw TLSError.openSSL(.invalidEncoding, "not a DER X.509 certificate")
        }
        return try adopting(x509)
    }

    /// Encodes a chain as concatenated PEM blocks, in the given order.
    public static func pem(chain: [Certificate]) throws -> [UInt8] {
        var out: [UInt8] = []
        for certificate in chain {
            out += try certificate.pem()
        }
        return out
    }

    public func pem() throws -> [UInt8] {
        try collectBIOOutput("certificate") { bio in
            PEM_write_bio_X509(bio, pointer) == 1
        }
    }

    public func der() throws -> [UInt8] {
        try Self.der(of: pointer)
    }

    /// The certified public key.
    public func publicKey() throws -> PublicKey {
        OpenSSLErrorQueue.clear()
        guard let key = X509_get_pubkey(pointer) else {
            throw TLSError.openSSL(.invalidEncoding, "certificate \(displayName) has no readable public key")
        }
        return PublicKey(owning: key)
    }

    /// The identity in the single `tunnel://ROLE/NAME` subjectAltName URI.
    ///
    /// Throws unless there is exactly one URI with the `tunnel://` scheme and it is
    /// well-formed: a certificate naming two identities must not be usable as either.
    public func tunnelIdentity() throws -> TunnelIdentity {
        let uris = tunnelURIs
        guard uris.count == 1, let identity = TunnelIdentity(uri: uris[0]) else {
            let found = uris.isEmpty ? "none" : uris.map { "\"\($0)\"" }.joined(separator: ", ")
            let name = commonName.map { "\"\($0)\"" } ?? "(no common name)"
            throw TLSError(
                .invalidIdentity,
                "certificate \(name) (serial \(serialNumberHex)) must carry exactly one well-formed tunnel://node/NAME or tunnel://operator/NAME URI in its subjectAltName (found: \(found)); reissue it with the tunnel CA tooling"
            )
        }
        return identity
    }

    /// All subjectAltName URIs with the `tunnel://` scheme, well-formed or not.
    private var tunnelURIs: [String] {
        subjectAlternativeNames.compactMap { name in
            guard case .uri(let uri) = name, uri.hasPrefix(TunnelIdentity.uriScheme) else { return nil }
            return uri
        }
    }

    /// One subjectAltName entry of the kinds this project uses.
    public enum AlternativeName: Sendable, Equatable, CustomStringConvertible {
        case dns(String)
        case ipAddress(String)
        case uri(String)
        /// Any other GeneralName type, by its OpenSSL type number.
        case other(Int32)

        public var description: String {
            switch self {
            case .dns(let name): "DNS:\(name)"
            case .ipAddress(let address): "IP:\(address)"
            case .uri(let uri): "URI:\(uri)"
            case .other(let type): "GeneralName type \(type)"
            }
        }
    }

    /// All subjectAltName entries, in certificate order.
    public var subjectAlternativeNames: [AlternativeName] {
        guard let raw = X509_get_ext_d2i(pointer, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        var result: [AlternativeName] = []
        for index in 0..<tunnel_sk_GENERAL_NAME_num(names) {
            var type: Int32 = 0
            guard let name = tunnel_sk_GENERAL_NAME_value(names, index),
                let value = GENERAL_NAME_get0_value(name, &type)
            else { continue }
            let string = value.assumingMemoryBound(to: ASN1_STRING.self)
            let bytes = UnsafeBufferPointer(
                start: ASN1_STRING_get0_data(string), count: Int(ASN1_STRING_length(string)))
            switch type {
            case GEN_DNS: result.append(.dns(String(decoding: bytes, as: UTF8.self)))
            case GEN_URI: result.append(.uri(String(decoding: bytes, as: UTF8.self)))
            case GEN_IPADD: result.append(.ipAddress(Self.formatIPAddress(bytes)))
            default: result.append(.other(type))
            }
        }
        return result
    }

    /// Human label for messages: the tunnel identity if there is one, else the CN, plus the serial.
    public var displayName: String {
        let uris = tunnelURIs
        let name = uris.count == 1 ? uris[0] : commonName.map { "\"\($0)\"" } ?? "(no name)"
        return "\(name) (serial \(serialNumberHex))"
    }

    public var description: String { displayName }

    static func der(of x509: OpaquePointer) throws -> [UInt8] {
        OpenSSLErrorQueue.clear()
        var der: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(x509, &der)
        guard length > 0, let der else {
            throw TLSError.openSSL(.openSSL, "could not DER-encode a certificate")
        }
        defer { tunnel_openssl_free(der) }
        return Array(UnsafeBufferPointer(start: der, count: Int(length)))
    }

    private static func formatIPAddress(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return Hex.encode(bytes)
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, bytes.baseAddress, &text, socklen_t(text.count)) != nil else {
            return Hex.encode(bytes)
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The eagerly read fields; reading them once keeps every accessor non-throwing.
    private struct Fields {
        var commonName: String?
        var serialNumberHex: String
        var notBefore: Int64
        var notAfter: Int64
        var sha256Fingerprint: [UInt8]

        init(_ x509: OpaquePointer) throws {
            commonName = X509Name.commonName(X509_get_subject_name(x509))
            guard let serial = Self.serialHex(X509_get0_serialNumber(x509)),
                let start = UTCTime.epochSeconds(of: X509_get0_notBefore(x509)),
                let end = UTCTime.epochSeconds(of: X509_get0_notAfter(x509))
            else {
                throw TLSError.openSSL(
                    .invalidEncoding, "certificate has an unreadable serial number or validity period")
            }
            serialNumberHex = serial
            notBefore = start
            notAfter = end
            sha256Fingerprint = SHA256.hash(try Certificate.der(of: x509))
        }

        static func serialHex(_ serial: UnsafePointer<ASN1_INTEGER>?) -> String? {
            guard let serial, let number = ASN1_INTEGER_to_BN(serial, nil) else { return nil }
            defer { BN_free(number) }
            guard let hex = BN_bn2hex(number) else { return nil }
            defer { tunnel_openssl_free(hex) }
            let text = String(cString: hex).lowercased()
            let trimmed = text.drop { $0 == "0" }
            return trimmed.isEmpty ? "0" : String(trimmed)
        }
    }
}
