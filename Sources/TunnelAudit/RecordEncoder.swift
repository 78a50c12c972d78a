internal import TunnelTLS

/// Builds record lines in the canonical form of docs/AUDIT.md §3: keys in byte order, no
/// whitespace, one fixed escaping of strings, integers in plain decimal.
///
/// Written by hand rather than with JSONEncoder, whose key order, escaping of `/` and number
/// formatting are not specified and have changed between Foundation versions; a record's hash is
/// over its exact bytes, so the bytes must be produced the same way every time.
struct RecordEncoder {
    /// The last encoded record: its line followed by one newline, which the hash does not cover.
    /// Reused between records to avoid allocations.
    private(set) var line: [UInt8] = []

    init() {
        line.reserveCapacity(1024)
    }

    /// Encodes one record. `prev` is the 64 hex digits of the previous record's hash.
    mutating func encode(
        seq: UInt64, milliseconds: Int64, type: String, prev: [UInt8], fields: [String: AuditValue]
    ) throws(AuditError) {
        guard RecordFormat.isValidName(type.utf8) else {
            throw AuditError(
                .invalidArgument, "record type \"\(type)\" is not 1–64 ASCII letters, digits, '_', '-' or '.'")
        }
        for name in fields.keys {
            guard RecordFormat.isValidName(name.utf8) else {
                throw AuditError(
                    .invalidArgument, "field name \"\(name)\" is not 1–64 ASCII letters, digits, '_', '-' or '.'")
            }
            guard !RecordFormat.reservedFields.contains(name) else {
                throw AuditError(
                    .invalidArgument,
                    "field name \"\(name)\" is reserved: every record carries prev, seq, time and type itself")
            }
        }
        let members = fields.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }

        line.removeAll(keepingCapacity: true)
        line.append(UInt8(ascii: "{"))
        var reserved = 0
        for (name, value) in members {
            while reserved < RecordFormat.reservedFields.count,
                RecordFormat.reservedFields[reserved].utf8.lexicographicallyPrecedes(name.utf8)
            {
                appendReserved(reserved, seq: seq, milliseconds: milliseconds, type: type, prev: prev)
                reserved += 1
            }
            appendKey(name)
            try appendValue(value, field: name)
        }
        while reserved < RecordFormat.reservedFields.count {
            appendReserved(reserved, seq: seq, milliseconds: milliseconds, type: type, prev: prev)
            reserved += 1
        }
        line.append(UInt8(ascii: "}"))
        line.append(0x0A)
        guard line.count - 1 <= RecordFormat.maxRecordBytes else {
            throw AuditError(
                .invalidArgument,
                "a \(type) record would be \(line.count - 1) bytes, more than the \(RecordFormat.maxRecordBytes) allowed"
            )
        }
    }

    private mutating func appendReserved(_ index: Int, seq: UInt64, milliseconds: Int64, type: String, prev: [UInt8]) {
        appendKey(RecordFormat.reservedFields[index])
        switch index {
        case 0:
            line.append(UInt8(ascii: "\""))
            line += prev
            line.append(UInt8(ascii: "\""))
        case 1:
            appendDecimal(seq)
        case 2:
            line.append(UInt8(ascii: "\""))
            RecordTime.append(milliseconds: milliseconds, to: &line)
            line.append(UInt8(ascii: "\""))
        default:
            appendString(type)
        }
    }

    /// Appends `,"name":` (without the comma for the first member).
    private mutating func appendKey(_ name: String) {
        if line.count > 1 { line.append(UInt8(ascii: ",")) }
        appendString(name)
        line.append(UInt8(ascii: ":"))
    }

    private mutating func appendValue(_ value: AuditValue, field: String) throws(AuditError) {
        switch value {
        case .string(let text):
            appendString(text)
        case .int(let number):
            if number < 0 { line.append(UInt8(ascii: "-")) }
            appendDecimal(number.magnitude)
        case .double(let number):
            guard number.isFinite else {
                throw AuditError(
                    .invalidArgument, "field \"\(field)\" is \(number); JSON can only carry finite numbers")
            }
            // Swift prints the shortest text that reads back as the same Double, always with a
            // '.' or an exponent, so it stays distinguishable from an integer.
            line += number.description.utf8
        case .bool(let flag):
            line += (flag ? "true" : "false").utf8
        case .null:
            line += "null".utf8
        case .strings(let items):
            line.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendString(item)
            }
            line.append(UInt8(ascii: "]"))
        case .object(let members):
            line.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendString(key)
                line.append(UInt8(ascii: ":"))
                appendString(members[key]!)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    private mutating func appendDecimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes: room for the 20 digits of UInt64.max
        withUnsafeMutableBytes(of: &digits) { buffer in
            var remaining = value
            var index = buffer.count
            repeat {
                index -= 1
                buffer[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            line += UnsafeRawBufferPointer(rebasing: buffer[index...])
        }
    }

    /// A JSON string with the one escaping the format allows: `\"`, `\\`, the short escapes
    /// `\b \f \n \r \t`, `\u00xx` (lowercase) for the other control characters, everything else raw UTF-8.
    private mutating func appendString(_ text: String) {
        var text = text
        line.append(UInt8(ascii: "\""))
        text.withUTF8 { utf8 in
            var runStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                line += UnsafeBufferPointer(rebasing: utf8[runStart..<index])
                runStart = index + 1
                line.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): line.append(byte)
                case 0x08: line.append(UInt8(ascii: "b"))
                case 0x0C: line.append(UInt8(ascii: "f"))
                case 0x0A: line.append(UInt8(ascii: "n"))
                case 0x0D: line.append(UInt8(ascii: "r"))
                case 0x09: line.append(UInt8(ascii: "t"))
                default:
                    line += [
                        UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Hex.digits[Int(byte >> 4)],
                        Hex.digits[Int(byte & 0x0F)],
                    ]
                }
            }
            line += UnsafeBufferPointer(rebasing: utf8[runStart...])
        }
        line.append(UInt8(ascii: "\""))
    }
}
