/// One field value of an audit record.
///
/// The shapes are deliberately few and flat so that every value has exactly one encoding in a
/// record line (docs/AUDIT.md §3). In the log a `double` always carries a `.` or an exponent and
/// an `int` never does, so the two stay distinct when a line is read back.
///
/// `Codable` is for carrying values elsewhere (configuration, IPC); it is not how the log encodes
/// them, and through JSONEncoder a `.double(1.0)` may come back as `.int(1)`.
public enum AuditValue: Codable, Sendable, Equatable {
    case string(String)
    case int(Int64)
    /// Must be finite: JSON has no NaN or infinity, and `append` refuses them.
    case double(Double)
    case bool(Bool)
    case null
    case strings([String])
    /// A flat map of strings, e.g. TLS subject attributes.
    case object([String: String])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String].self) {
            self = .strings(value)
        } else if let value = try? container.decode([String: String].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription:
                    "not an audit value: expected a string, number, boolean, null, array of strings or object of strings"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .strings(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension AuditValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension AuditValue {
    /// The value as one line of text for people (`audit ls --events`, the console): strings as
    /// they are, lists comma-joined, objects as sorted `key=value` pairs. Escaping for the
    /// terminal or the page is the presenter's job.
    public var text: String {
        switch self {
        case .string(let text): text
        case .int(let number): "\(number)"
        case .double(let number): "\(number)"
        case .bool(let flag): "\(flag)"
        case .null: "null"
        case .strings(let list): list.joined(separator: ",")
        case .object(let map): map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
    }
}
