#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `value` as one line of JSON, keys sorted, slashes as they are: exact, unlike the text output,
/// which escapes what others sent (the JSON parser of whoever reads it does the rest).
package func jsonText<Value: Encodable>(_ value: Value) -> String {
    String(decoding: (try? JSONEncoder.sorted.encode(value)) ?? Data(), as: UTF8.self)
}

/// Prints `value` as one JSON document on stdout (docs/JSON.md has every shape).
package func printJSON<Value: Encodable>(_ value: Value) {
    print(jsonText(value))
}

extension JSONEncoder {
    package static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
