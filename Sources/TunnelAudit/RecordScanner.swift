internal import Glibc

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

/// The fields of a record line the chain rules need, validated, as byte ranges into the line.
struct RecordHeader {
    enum Kind: Equatable {
        case event
        case checkpoint
        case segmentStart
        case recovery
        case writeResumed
    }

    var kind = Kind.event
    var seq: UInt64 = 0
    var prev = 0..<0
    var type = 0..<0
    var utcDay: Int64 = 0
    /// checkpoint
    var signedSeq: UInt64 = 0
    var signedHash = 0..<0
    var keyID = 0..<0
    var signature = 0..<0
    var reason = CheckpointReason.count
    /// segment_start
    var previousFile = 0..<0
    var previousSeq: UInt64 = 0
    var previousHash = 0..<0

    /// Validates the whole line and extracts the fields; the error says what is wrong.
    static func parse(_ line: UnsafeRawBufferPointer) throws(ScanError) -> RecordHeader {
        var header = RecordHeader()
        var seen = (seq: false, prev: false, type: false, time: false)
        var signedSeq, previousSeq: JSONCursor.Value?
        var signedHash, keyID, signature, reason, previousFile, previousHash: JSONCursor.Value?

        var members = try ObjectReader(JSONCursor(line), fieldNames: true)
        while let (key, value) = try members.next() {
            func named(_ name: StaticString) -> Bool {
                key.count == name.utf8CodeUnitCount
                    && memcmp(line.baseAddress! + key.lowerBound, name.utf8Start, key.count) == 0
            }
            if named("seq") {
                header.seq = try unsigned(value, "seq", line)
                seen.seq = true
            } else if named("prev") {
                header.prev = try hex(value, "prev", count: 64, line)
                seen.prev = true
            } else if named("type") {
                header.type = try string(value, "type")
                guard RecordFormat.isValidName(UnsafeRawBufferPointer(rebasing: line[header.type])) else {
                    throw ScanError("type is not 1–64 ASCII letters, digits, '_', '-' or '.'")
                }
                seen.type = true
            } else if named("time") {
                let time = try string(value, "time")
                guard let day = RecordTime.utcDay(text: UnsafeRawBufferPointer(rebasing: line[time])) else {
                    throw ScanError("time is not of the form 2026-01-31T23:59:59.999Z")
                }
                header.utcDay = day
                seen.time = true
            } else if named(SystemField.signedSeq) {
                signedSeq = value
            } else if named(SystemField.signedHash) {
                signedHash = value
            } else if named(SystemField.keyID) {
                keyID = value
            } else if named(SystemField.signature) {
                signature = value
            } else if named(SystemField.reason) {
                reason = value
            } else if named(SystemField.previousFile) {
                previousFile = value
            } else if named(SystemField.previousSeq) {
                previousSeq = value
            } else if named(SystemField.previousHash) {
                previousHash = value
            }
        }
        guard members.cursor.atEnd else { throw members.cursor.unexpected("the end of the line") }
        guard seen.seq else { throw ScanError("the seq field is missing") }
        guard seen.prev else { throw ScanError("the prev field is missing") }
        guard seen.type else { throw ScanError("the type field is missing") }
        guard seen.time else { throw ScanError("the time field is missing") }

        let type = UnsafeRawBufferPointer(rebasing: line[header.type])
        header.kind =
            if type.elementsEqual("checkpoint".utf8) { .checkpoint } else if type.elementsEqual("segment_start".utf8) {
                .segmentStart
            } else if type.elementsEqual("recovery".utf8) { .recovery } else if type.elementsEqual("write_resumed".utf8)
            { .writeResumed } else { .event }

        switch header.kind {
        case .checkpoint:
            header.signedSeq = try unsigned(require(signedSeq, SystemField.signedSeq), SystemField.signedSeq.text, line)
            header.signedHash = try hex(
                require(signedHash, SystemField.signedHash), SystemField.signedHash.text, count: 64, line)
            header.keyID = try hex(
                require(keyID, SystemField.keyID), SystemField.keyID.text, count: RecordFormat.keyIDLength, line)
            header.signature = try string(require(signature, SystemField.signature), SystemField.signature.text)
            let reasonText = UnsafeRawBufferPointer(
                rebasing: line[try string(require(reason, SystemField.reason), SystemField.reason.text)])
            guard let known = CheckpointReason.allCases.first(where: { reasonText.elementsEqual($0.rawValue.utf8) })
            else {
                throw ScanError("checkpoint reason is not one of count, interval, rotate, close, recovery")
            }
            header.reason = known
        case .segmentStart:
            header.previousFile = try string(
                require(previousFile, SystemField.previousFile), SystemField.previousFile.text)
            header.previousSeq = try unsigned(
                require(previousSeq, SystemField.previousSeq), SystemField.previousSeq.text, line)
            header.previousHash = try hex(
                require(previousHash, SystemField.previousHash), SystemField.previousHash.text, count: 64, line)
        case .event, .recovery, .writeResumed:
            break
        }
        return header
    }

    private static func require(_ value: JSONCursor.Value?, _ name: StaticString) throws(ScanError) -> JSONCursor.Value
    {
        guard let value else { throw ScanError("the \(name) field is missing") }
        return value
    }

    private static func string(_ value: JSONCursor.Value, _ name: String) throws(ScanError) -> Range<Int> {
        guard case .string(let range) = value else { throw ScanError("\(name) is not a string") }
        return range
    }

    private static func hex(_ value: JSONCursor.Value, _ name: String, count: Int, _ line: UnsafeRawBufferPointer)
        throws(ScanError) -> Range<Int>
    {
        let range = try string(value, name)
        guard range.count == count, line[range].allSatisfy({ JSONCursor.lowerHexDigit($0) != nil }) else {
            throw ScanError("\(name) is not \(count) lowercase hex digits")
        }
        return range
    }

    private static func unsigned(_ value: JSONCursor.Value, _ name: String, _ line: UnsafeRawBufferPointer)
        throws(ScanError) -> UInt64
    {
        guard case .integer(let range) = value, line[range.lowerBound] != UInt8(ascii: "-"),
            let number = decimal(UnsafeRawBufferPointer(rebasing: line[range]))
        else { throw ScanError("\(name) is not an unsigned 64-bit integer") }
        return number
    }

    /// Parses digits (already validated as a JSON integer) without allocating; nil on overflow.
    static func decimal(_ digits: UnsafeRawBufferPointer) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}

/// Reads a whole record back into values, for the rare records whose content matters to the
/// writer (stream open/close after a crash).
enum RecordDecoder {
    static func fields(_ line: UnsafeRawBufferPointer) throws(ScanError) -> [String: AuditValue] {
        var fields: [String: AuditValue] = [:]
        var members = try ObjectReader(JSONCursor(line), fieldNames: true)
        while let (key, value) = try members.next() {
            fields[text(line, key)] = try decode(value, line)
        }
        return fields
    }

    private static func decode(_ value: JSONCursor.Value, _ line: UnsafeRawBufferPointer) throws(ScanError)
        -> AuditValue
    {
        switch value {
        case .string(let range):
            return .string(text(line, range))
        case .integer(let range):
            let digits = UnsafeRawBufferPointer(rebasing: line[range])
            let negative = digits.first == UInt8(ascii: "-")
            guard
                let magnitude = RecordHeader.decimal(
                    negative ? UnsafeRawBufferPointer(rebasing: digits.dropFirst()) : digits),
                let number = negative
                    ? (magnitude == Int64.min.magnitude ? Int64.min : Int64(exactly: magnitude).map { -$0 })
                    : Int64(exactly: magnitude)
            else { throw ScanError("integer at column \(range.lowerBound + 1) does not fit in 64 bits") }
            return .int(number)
        case .number(let range):
            guard let number = Double(String(decoding: line[range], as: UTF8.self)) else {
                throw ScanError("number at column \(range.lowerBound + 1) is out of range")
            }
            return .double(number)
        case .bool(let flag):
            return .bool(flag)
        case .null:
            return .null
        case .strings(let range):
            var cursor = JSONCursor(line, at: range.lowerBound + 1)
            var items: [String] = []
            while cursor.peek() == UInt8(ascii: "\"") {
                items.append(text(line, try cursor.string()))
                if cursor.peek() == UInt8(ascii: ",") { try cursor.expect(UInt8(ascii: ",")) }
            }
            return .strings(items)
        case .object(let range):
            var members = try ObjectReader(JSONCursor(line, at: range.lowerBound), fieldNames: false)
            var object: [String: String] = [:]
            while let (key, value) = try members.next() {
                guard case .string(let valueRange) = value else { continue }
                object[text(line, key)] = text(line, valueRange)
            }
            return .object(object)
        }
    }

    /// Undoes the (already validated) escapes of a string's content.
    static func text(_ line: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        let raw = line[range]
        guard raw.contains(UInt8(ascii: "\\")) else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = line[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            switch line[index + 1] {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                out.append(JSONCursor.lowerHexDigit(line[index + 4])! << 4 | JSONCursor.lowerHexDigit(line[index + 5])!)
                index += 6
                continue
            case let escaped: out.append(escaped)
            }
            index += 2
        }
        return String(decoding: out, as: UTF8.self)
    }
}
