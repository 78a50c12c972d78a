internal import Glibc

// The canonical-JSON half of reading a record line: the byte-level cursor and the object reader
// that accept exactly what the writer produces. RecordScanner.swift gives the values their
// meaning as a record (header, fields).

/// Why a line is not a well-formed record (becomes part of the verifier's sentence).
struct ScanError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A validating reader over one line's bytes that accepts exactly the canonical JSON the
/// writer produces (docs/AUDIT.md §3) and nothing else: no whitespace, one escaping per
/// character, valid UTF-8, keys in strictly increasing byte order.
///
/// Strictness is what makes the bytes unambiguous: with duplicate keys or alternative escapes,
/// two JSON parsers could read different values out of one hashed line.
struct JSONCursor {
    enum Value {
        /// The bytes between the quotes, escapes not yet undone.
        case string(Range<Int>)
        case integer(Range<Int>)
        /// A number with a fraction or an exponent.
        case number(Range<Int>)
        case bool(Bool)
        case null
        /// An array of strings, brackets included.
        case strings(Range<Int>)
        /// An object of strings, braces included.
        case object(Range<Int>)
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var index: Int

    init(_ bytes: UnsafeRawBufferPointer, at index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    var atEnd: Bool { index == bytes.count }

    func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    mutating func expect(_ byte: UInt8) throws(ScanError) {
        guard peek() == byte else { throw unexpected("'\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    func unexpected(_ wanted: String) -> ScanError {
        guard let byte = peek() else { return ScanError("the line ends where \(wanted) was expected") }
        let shown =
            byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        return ScanError("\(shown) at column \(index + 1) where \(wanted) was expected")
    }

    mutating func value() throws(ScanError) -> Value {
        guard let byte = peek() else { throw unexpected("a value") }
        switch byte {
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "["):
            let start = index
            index += 1
            if peek() != UInt8(ascii: "]") {
                _ = try string()
                while peek() == UInt8(ascii: ",") {
                    index += 1
                    _ = try string()
                }
            }
            try expect(UInt8(ascii: "]"))
            return .strings(start..<index)
        case UInt8(ascii: "{"):
            let start = index
            var members = try ObjectReader(self, fieldNames: false)
            while try members.next() != nil {}
            self = members.cursor
            return .object(start..<index)
        default:
            throw unexpected("a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(ScanError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count, memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0 else {
            throw unexpected("\(word)")
        }
        index += count
    }

    /// An integer is `0` or `-?[1-9][0-9]*`; anything with `.` or `e` is a number (a double).
    private mutating func number() throws(ScanError) -> Value {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            index += 1
            try digits()
            isInteger = false
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            try digits()
            isInteger = false
        }
        if isInteger, index - start == 2, bytes[start] == UInt8(ascii: "-"), bytes[start + 1] == UInt8(ascii: "0") {
            throw ScanError("-0 at column \(start + 1) is not a canonical integer")
        }
        return isInteger ? .integer(start..<index) : .number(start..<index)
    }

    private mutating func digits() throws(ScanError) {
        guard let first = peek(), first &- UInt8(ascii: "0") < 10 else { throw unexpected("a digit") }
        repeat { index += 1 } while peek().map { $0 &- UInt8(ascii: "0") < 10 } ?? false
    }

    /// Returns the range between the quotes and moves past the closing one.
    mutating func string() throws(ScanError) -> Range<Int> {
        try expect(UInt8(ascii: "\""))
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return start..<(index - 1)
            } else if byte == UInt8(ascii: "\\") {
                try escape()
            } else if byte < 0x20 {
                throw ScanError("raw control character 0x\(String(byte, radix: 16)) in a string at column \(index + 1)")
            } else if byte < 0x80 {
                index += 1
            } else {
                try multibyteCharacter()
            }
        }
        throw ScanError("the line ends inside a string")
    }

    /// Only the escapes the writer produces: `\" \\ \b \f \n \r \t`, and `\u00xx` (lowercase)
    /// for control characters that have no short form.
    private mutating func escape() throws(ScanError) {
        guard index + 1 < bytes.count else { throw ScanError("the line ends inside an escape") }
        switch bytes[index + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 2
        case UInt8(ascii: "u"):
            guard index + 6 <= bytes.count, bytes[index + 2] == UInt8(ascii: "0"),
                bytes[index + 3] == UInt8(ascii: "0"),
                let high = Self.lowerHexDigit(bytes[index + 4]), let low = Self.lowerHexDigit(bytes[index + 5]),
                high < 2, !Self.shortEscapes.contains(high << 4 | low)
            else { throw ScanError("non-canonical \\u escape at column \(index + 1)") }
            index += 6
        default:
            throw ScanError("invalid escape at column \(index + 1)")
        }
    }

    /// One UTF-8 sequence of 2–4 bytes in shortest form, no surrogates, at most U+10FFFF.
    private mutating func multibyteCharacter() throws(ScanError) {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            secondRange = 0x80...0x9F
        case 0xF0:
            length = 4
            secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            secondRange = 0x80...0x8F
        default: throw ScanError("invalid UTF-8 at column \(index + 1)")
        }
        guard index + length <= bytes.count, secondRange.contains(bytes[index + 1]) else {
            throw ScanError("invalid UTF-8 at column \(index + 1)")
        }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 {
            throw ScanError("invalid UTF-8 at column \(index + 1)")
        }
        index += length
    }

    /// Control characters written as `\b \t \n \f \r`, never as `\u00xx`.
    private static let shortEscapes: Set<UInt8> = [0x08, 0x09, 0x0A, 0x0C, 0x0D]

    static func lowerHexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}

/// The members of one object, in order, checking that keys strictly increase.
///
/// With `fieldNames` (a record's top level) keys must be format names and values may be any
/// value; otherwise (an `object` value) keys are any string and values must be strings.
struct ObjectReader {
    private(set) var cursor: JSONCursor
    private let fieldNames: Bool
    private var previousKey: Range<Int>?
    private var finished = false

    init(_ cursor: JSONCursor, fieldNames: Bool) throws(ScanError) {
        self.cursor = cursor
        self.fieldNames = fieldNames
        try self.cursor.expect(UInt8(ascii: "{"))
        if self.cursor.peek() == UInt8(ascii: "}") {
            self.cursor = JSONCursor(cursor.bytes, at: self.cursor.index + 1)
            finished = true
        }
    }

    mutating func next() throws(ScanError) -> (key: Range<Int>, value: JSONCursor.Value)? {
        guard !finished else { return nil }
        if previousKey != nil { try cursor.expect(UInt8(ascii: ",")) }
        let key = try cursor.string()
        let bytes = cursor.bytes
        if fieldNames, !RecordFormat.isValidName(UnsafeRawBufferPointer(rebasing: bytes[key])) {
            throw ScanError("field name at column \(key.lowerBound) is not 1–64 ASCII letters, digits, '_', '-' or '.'")
        }
        if let previousKey, !precedes(previousKey, key) {
            throw ScanError(
                "key at column \(key.lowerBound) is a duplicate or out of order (keys must be sorted bytewise)")
        }
        previousKey = key
        try cursor.expect(UInt8(ascii: ":"))
        let value = try cursor.value()
        if !fieldNames {
            guard case .string = value else {
                throw ScanError("value at column \(key.upperBound + 3) inside an object is not a string")
            }
        }
        if cursor.peek() == UInt8(ascii: "}") {
            cursor = JSONCursor(bytes, at: cursor.index + 1)
            finished = true
        }
        return (key, value)
    }

    /// Whether key `first` sorts strictly before key `second` by their UTF-8 bytes *unescaped*,
    /// the order the writer sorts in. Field names never contain escapes, so only keys of
    /// `object` values with a backslash take the slow path.
    private func precedes(_ first: Range<Int>, _ second: Range<Int>) -> Bool {
        let bytes = cursor.bytes
        if fieldNames || !(bytes[first].contains(UInt8(ascii: "\\")) || bytes[second].contains(UInt8(ascii: "\\"))) {
            let order = memcmp(
                bytes.baseAddress! + first.lowerBound, bytes.baseAddress! + second.lowerBound,
                min(first.count, second.count))
            return order < 0 || (order == 0 && first.count < second.count)
        }
        return RecordDecoder.text(bytes, first).utf8.lexicographicallyPrecedes(RecordDecoder.text(bytes, second).utf8)
    }
}
