/// A URL's path and its query parameters, percent-decoded.
struct RequestTarget {
    let path: String
    let parameters: [(name: String, value: String)]

    init(_ target: String) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = RequestTarget.decode(String(parts[0]), plusIsSpace: false)
        guard parts.count == 2 else {
            parameters = []
            return
        }
        parameters = parts[1].split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (
                RequestTarget.decode(String(kv[0]), plusIsSpace: true),
                kv.count == 2 ? RequestTarget.decode(String(kv[1]), plusIsSpace: true) : ""
            )
        }
    }

    subscript(_ name: String) -> String? { parameters.first { $0.name == name }?.value }

    /// Percent-decoding; malformed escapes stay as they are, invalid UTF-8 becomes U+FFFD.
    static func decode(_ text: String, plusIsSpace: Bool) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 37, index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
                continue
            }
            out.append(plusIsSpace && byte == 43 ? 32 : byte)
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-encoding for a query value: everything but unreserved characters (RFC 3986 §2.3).
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                || [45, 46, 95, 126].contains(byte)
            {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out +=
                    "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 15, radix: 16, uppercase: true)
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 65...70: byte - 55
        case 97...102: byte - 87
        default: nil
        }
    }
}
