/// A value that is one field of an event record (docs/AUDIT.md §3.3), convertible to and from
/// `AuditValue`. Only these types may be properties of an event's payload.
public protocol AuditFieldValue {
    var auditValue: AuditValue { get }
    init?(auditValue: AuditValue)
}

extension String: AuditFieldValue {
    public var auditValue: AuditValue { .string(self) }
    public init?(auditValue: AuditValue) {
        guard case .string(let text) = auditValue else { return nil }
        self = text
    }
}

extension Int64: AuditFieldValue {
    public var auditValue: AuditValue { .int(self) }
    public init?(auditValue: AuditValue) {
        guard case .int(let number) = auditValue else { return nil }
        self = number
    }
}

/// Seq fields: written as integers, never negative.
extension UInt64: AuditFieldValue {
    public var auditValue: AuditValue { .int(Int64(clamping: self)) }
    public init?(auditValue: AuditValue) {
        guard case .int(let number) = auditValue, number >= 0 else { return nil }
        self = UInt64(number)
    }
}

extension Bool: AuditFieldValue {
    public var auditValue: AuditValue { .bool(self) }
    public init?(auditValue: AuditValue) {
        guard case .bool(let flag) = auditValue else { return nil }
        self = flag
    }
}

extension Array: AuditFieldValue where Element == String {
    public var auditValue: AuditValue { .strings(self) }
    public init?(auditValue: AuditValue) {
        guard case .strings(let list) = auditValue else { return nil }
        self = list
    }
}

extension Dictionary: AuditFieldValue where Key == String, Value == String {
    public var auditValue: AuditValue { .object(self) }
    public init?(auditValue: AuditValue) {
        guard case .object(let map) = auditValue else { return nil }
        self = map
    }
}

/// An event payload's named fields as the flat field map of a record, and back.
///
/// Payloads are plain `Codable` structs: the compiler writes their field lists once, and this
/// coder maps each property to one top-level field, its name in snake case (`bytesToNode` is
/// `bytes_to_node`); a nil optional is left out, as the gateway has always written it.
enum EventFieldCoder {
    static func encode(_ payload: some Encodable) -> [String: AuditValue] {
        let encoder = FieldEncoder()
        do {
            try payload.encode(to: encoder)
        } catch {
            // Payloads are declared in this module with `AuditFieldValue` properties only; a
            // test encodes every case, so this is a programming error caught there.
            preconditionFailure("audit event payload \(type(of: payload)) is not flat: \(error)")
        }
        return encoder.fields
    }

    /// Decodes `T` from `fields`, adding the names it read to `consumed`.
    static func decode<T: Decodable>(_: T.Type, from fields: [String: AuditValue], consumed: inout Set<String>) throws
        -> T
    {
        let decoder = FieldDecoder(fields: fields)
        let value = try T(from: decoder)
        consumed.formUnion(decoder.consumed)
        return value
    }

    /// `bytesToNode` → `bytes_to_node`; names already in snake case stay as they are.
    static func fieldName(_ key: some CodingKey) -> String {
        var name = ""
        for character in key.stringValue {
            if character.isUppercase {
                name += "_" + character.lowercased()
            } else {
                name.append(character)
            }
        }
        return name
    }

    struct NotFlat: Error, CustomStringConvertible {
        let description: String
    }
}

private final class FieldEncoder: Encoder {
    var fields: [String: AuditValue] = [:]
    let codingPath: [any CodingKey] = []
    let userInfo: [CodingUserInfoKey: Any] = [:]

    func container<Key: CodingKey>(keyedBy _: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Container(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        preconditionFailure("audit event payloads are structs of named fields")
    }
    func singleValueContainer() -> any SingleValueEncodingContainer {
        preconditionFailure("audit event payloads are structs of named fields")
    }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let encoder: FieldEncoder
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil(forKey key: Key) throws { encoder.fields[EventFieldCoder.fieldName(key)] = .null }
        mutating func encode(_ value: some Encodable, forKey key: Key) throws {
            guard let field = value as? any AuditFieldValue else {
                throw EventFieldCoder.NotFlat(
                    description: "\(key.stringValue) is a \(type(of: value)), not an audit field value")
            }
            encoder.fields[EventFieldCoder.fieldName(key)] = field.auditValue
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy _: NestedKey.Type, forKey _: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            preconditionFailure("audit event fields are flat")
        }
        mutating func nestedUnkeyedContainer(forKey _: Key) -> any UnkeyedEncodingContainer {
            preconditionFailure("audit event fields are flat")
        }
        mutating func superEncoder() -> any Encoder { encoder }
        mutating func superEncoder(forKey _: Key) -> any Encoder { encoder }
    }
}

private final class FieldDecoder: Decoder {
    let fields: [String: AuditValue]
    var consumed: Set<String> = []
    let codingPath: [any CodingKey] = []
    let userInfo: [CodingUserInfoKey: Any] = [:]

    init(fields: [String: AuditValue]) {
        self.fields = fields
    }

    func container<Key: CodingKey>(keyedBy _: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Container(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw EventFieldCoder.NotFlat(description: "not a list")
    }
    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw EventFieldCoder.NotFlat(description: "not a single value")
    }

    struct Container<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: FieldDecoder
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { decoder.fields.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { decoder.fields[EventFieldCoder.fieldName(key)] != nil }

        func decodeNil(forKey key: Key) throws -> Bool {
            let name = EventFieldCoder.fieldName(key)
            guard decoder.fields[name] == .null else { return false }
            decoder.consumed.insert(name)
            return true
        }

        func decode<T: Decodable>(_: T.Type, forKey key: Key) throws -> T {
            let name = EventFieldCoder.fieldName(key)
            guard let value = decoder.fields[name] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "no field \(name)"))
            }
            guard let kind = T.self as? any AuditFieldValue.Type, let decoded = kind.init(auditValue: value) as? T
            else {
                throw DecodingError.typeMismatch(
                    T.self, .init(codingPath: [key], debugDescription: "field \(name) is not a \(T.self)"))
            }
            decoder.consumed.insert(name)
            return decoded
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy _: NestedKey.Type, forKey _: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            throw EventFieldCoder.NotFlat(description: "audit event fields are flat")
        }
        func nestedUnkeyedContainer(forKey _: Key) throws -> any UnkeyedDecodingContainer {
            throw EventFieldCoder.NotFlat(description: "audit event fields are flat")
        }
        func superDecoder() throws -> any Decoder { decoder }
        func superDecoder(forKey _: Key) throws -> any Decoder { decoder }
    }
}

/// Enumerations of field values (outcomes, kinds) are written as their raw strings.
extension AuditFieldValue where Self: RawRepresentable, RawValue == String {
    public var auditValue: AuditValue { .string(rawValue) }
    public init?(auditValue: AuditValue) {
        guard case .string(let text) = auditValue else { return nil }
        self.init(rawValue: text)
    }
}
