import Foundation

/// The `time` field: UTC, RFC 3339 with exactly three fraction digits, e.g. `2026-03-01T12:00:05.123Z`.
///
/// Computed with integer calendar arithmetic (proleptic Gregorian, as RFC 3339 uses) rather than
/// a formatter: it runs once per record, and the output must never depend on locale or time zone.
enum RecordTime {
    /// Length of the text form, in bytes.
    static let textLength = 24
    private static let millisecondsPerDay: Int64 = 86_400_000
    /// The range the four-digit year of RFC 3339 can express.
    private static let earliest = daysFromCivil(year: 0, month: 1, day: 1) * millisecondsPerDay
    private static let latest = daysFromCivil(year: 10000, month: 1, day: 1) * millisecondsPerDay - 1
    /// Where the text form has fixed punctuation, and which.
    private static let separators: [(Int, UInt8)] = [
        (4, UInt8(ascii: "-")), (7, UInt8(ascii: "-")), (10, UInt8(ascii: "T")), (13, UInt8(ascii: ":")),
        (16, UInt8(ascii: ":")), (19, UInt8(ascii: ".")), (23, UInt8(ascii: "Z")),
    ]

    /// Whole milliseconds since 1970 (rounded down), refusing dates RFC 3339 cannot write.
    static func milliseconds(_ date: Date) throws(AuditError) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1000).rounded(.down)
        guard value.isFinite, value >= Double(earliest), value <= Double(latest) else {
            throw AuditError(
                .invalidArgument, "the clock reads \(date), outside the years 0000–9999 a record time can carry")
        }
        return Int64(value)
    }

    /// The UTC day number (days since 1970-01-01) of a millisecond timestamp.
    static func utcDay(milliseconds: Int64) -> Int64 {
        floorDivide(milliseconds, millisecondsPerDay)
    }

    /// Appends the 24-byte text form of `milliseconds` (already range-checked) to `out`.
    static func append(milliseconds: Int64, to out: inout [UInt8]) {
        let days = floorDivide(milliseconds, millisecondsPerDay)
        let inDay = milliseconds - days * millisecondsPerDay
        let (year, month, day) = civil(fromDays: days)
        func put(_ value: Int64, digits: Int) {
            var divisor: Int64 = 1
            for _ in 1..<digits { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
                divisor /= 10
            }
        }
        put(year, digits: 4)
        out.append(UInt8(ascii: "-"))
        put(month, digits: 2)
        out.append(UInt8(ascii: "-"))
        put(day, digits: 2)
        out.append(UInt8(ascii: "T"))
        put(inDay / 3_600_000, digits: 2)
        out.append(UInt8(ascii: ":"))
        put(inDay / 60_000 % 60, digits: 2)
        out.append(UInt8(ascii: ":"))
        put(inDay / 1000 % 60, digits: 2)
        out.append(UInt8(ascii: "."))
        put(inDay % 1000, digits: 3)
        out.append(UInt8(ascii: "Z"))
    }

    /// The UTC day number of a `time` field's text, or nil unless it is exactly the form above
    /// with in-range month, day, hour, minute and second.
    static func utcDay(text: UnsafeRawBufferPointer) -> Int64? {
        guard text.count == textLength else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for index in from..<(from + count) {
                let digit = text[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        for (index, separator) in separators where text[index] != separator { return nil }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
            number(20, 3) != nil,
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        return daysFromCivil(year: year, month: month, day: day)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = floorDivide(shiftedYear, 400)
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of `daysFromCivil`.
    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
