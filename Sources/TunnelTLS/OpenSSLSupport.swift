internal import COpenSSL
internal import Glibc

/// Runs `body` with a read-only memory BIO over `bytes`; the BIO never outlives the call.
/// `package`: TunnelAudit reads its Ed25519 keys through it too.
package func withReadOnlyBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
    try bytes.withUnsafeBytes { raw in
        // BIO_new_mem_buf refuses a NULL pointer, which is what an empty array may hand us.
        let bio = raw.isEmpty ? BIO_new(BIO_s_mem()) : BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
        guard let bio else {
            throw TLSError.openSSL(.openSSL, "could not allocate an OpenSSL memory BIO")
        }
        defer { BIO_free(bio) }
        return try body(bio)
    }
}

/// Runs `write` against a fresh memory BIO and returns everything it wrote.
package func collectBIOOutput(_ what: String, _ write: (OpaquePointer) -> Bool) throws(TLSError) -> [UInt8] {
    OpenSSLErrorQueue.clear()
    guard let bio = BIO_new(BIO_s_mem()) else {
        throw TLSError.openSSL(.openSSL, "could not allocate an OpenSSL memory BIO")
    }
    defer { BIO_free(bio) }
    guard write(bio) else {
        throw TLSError.openSSL(.openSSL, "could not encode \(what)")
    }
    var data: UnsafeMutablePointer<CChar>?
    let length = tunnel_bio_get_mem_data(bio, &data)
    guard length > 0, let data else { return [] }
    return Array(UnsafeRawBufferPointer(start: data, count: length))
}

/// PEM passphrase callback that refuses: without it OpenSSL would prompt on the
/// controlling terminal when it meets an encrypted key, hanging a daemon at boot.
package let refusePassphrase:
    @convention(c) (
        UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?
    ) -> Int32 = { _, _, _, _ in -1 }

/// Lowercase hexadecimal, the form used for fingerprints, pins and serials.
public enum Hex {
    package static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Writes the hex of `bytes` to `out` (two bytes each), allocating nothing: the audit log
    /// hashes every record.
    package static func write(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        for (index, byte) in bytes.enumerated() {
            out[2 * index] = digits[Int(byte >> 4)]
            out[2 * index + 1] = digits[Int(byte & 0x0F)]
        }
    }

    /// Accepts either case; nil for odd length or non-hex characters (e.g. a mistyped CA pin).
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}

/// SHA-256 of arbitrary bytes (CA pins, audit hashes).
public enum SHA256 {
    public static let byteCount = 32

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            EVP_Digest(bytes.baseAddress, bytes.count, out.baseAddress, &length, EVP_sha256(), nil)
        }
        // EVP_Digest with SHA-256 only fails on allocation failure, which Swift treats as fatal too.
        precondition(ok == 1 && length == UInt32(byteCount), "SHA-256 digest failed")
        return digest
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }
}

/// Converts between epoch seconds and the UTC text used in messages.
public enum UTCTime {
    /// `2026-11-28T05:40:12Z`
    public static func format(_ epochSeconds: Int64) -> String {
        var seconds = time_t(epochSeconds)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "\(epochSeconds) s since 1970" }
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    /// The local wall clock, for "this machine's clock reads …" hints.
    static func now() -> Int64 {
        Int64(time(nil))
    }

    /// Epoch seconds of an ASN1_TIME (UTCTime or GeneralizedTime).
    static func epochSeconds(of asn1Time: UnsafePointer<ASN1_TIME>?) -> Int64? {
        guard let asn1Time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(asn1Time, &parts) == 1 else { return nil }
        return Int64(timegm(&parts))
    }
}
