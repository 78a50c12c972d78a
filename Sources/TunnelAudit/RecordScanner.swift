internal import Glibc

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
        var system = SystemValues()

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
            } else {
                system.keep(value, ifOneOf: named)
            }
        }
        guard members.cursor.atEnd else { throw members.cursor.unexpected("the end of the line") }
        guard seen.seq else { throw ScanError("the seq field is missing") }
        guard seen.prev else { throw ScanError("the prev field is missing") }
        guard seen.type else { throw ScanError("the type field is missing") }
        guard seen.time else { throw ScanError("the time field is missing") }

        header.kind = kind(ofType: UnsafeRawBufferPointer(rebasing: line[header.type]))
        switch header.kind {
        case .checkpoint: try header.readCheckpoint(system, line)
        case .segmentStart: try header.readSegmentStart(system, line)
        case .event, .recovery, .writeResumed: break
        }
        return header
    }

    /// The system fields a checkpoint or a segment_start carries, kept until the type says which apply.
    private struct SystemValues {
        var signedSeq, previousSeq: JSONCursor.Value?
        var signedHash, keyID, signature, reason, previousFile, previousHash: JSONCursor.Value?

        /// Keeps `value` if `named` matches a system field's name; other fields are the event's own.
        mutating func keep(_ value: JSONCursor.Value, ifOneOf named: (StaticString) -> Bool) {
            if named(SystemField.signedSeq) {
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
    }

    private static func kind(ofType type: UnsafeRawBufferPointer) -> Kind {
        if type.elementsEqual("checkpoint".utf8) { return .checkpoint }
        if type.elementsEqual("segment_start".utf8) { return .segmentStart }
        if type.elementsEqual("recovery".utf8) { return .recovery }
        if type.elementsEqual("write_resumed".utf8) { return .writeResumed }
        return .event
    }

    private mutating func readCheckpoint(_ system: SystemValues, _ line: UnsafeRawBufferPointer) throws(ScanError) {
        signedSeq = try Self.unsigned(
            Self.require(system.signedSeq, SystemField.signedSeq), SystemField.signedSeq.text, line)
        signedHash = try Self.hex(
            Self.require(system.signedHash, SystemField.signedHash), SystemField.signedHash.text, count: 64, line)
        keyID = try Self.hex(
            Self.require(system.keyID, SystemField.keyID), SystemField.keyID.text, count: RecordFormat.keyIDLength,
            line)
        signature = try Self.string(
            Self.require(system.signature, SystemField.signature), SystemField.signature.text)
        let reasonText = UnsafeRawBufferPointer(
            rebasing: line[try Self.string(Self.require(system.reason, SystemField.reason), SystemField.reason.text)])
        guard let known = CheckpointReason.allCases.first(where: { reasonText.elementsEqual($0.rawValue.utf8) })
        else {
            throw ScanError("checkpoint reason is not one of count, interval, rotate, close, recovery")
        }
        reason = known
    }

    private mutating func readSegmentStart(_ system: SystemValues, _ line: UnsafeRawBufferPointer) throws(ScanError) {
        previousFile = try Self.string(
            Self.require(system.previousFile, SystemField.previousFile), SystemField.previousFile.text)
        previousSeq = try Self.unsigned(
            Self.require(system.previousSeq, SystemField.previousSeq), SystemField.previousSeq.text, line)
        previousHash = try Self.hex(
            Self.require(system.previousHash, SystemField.previousHash), SystemField.previousHash.text, count: 64,
            line)
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
