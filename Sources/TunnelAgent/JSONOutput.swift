import ArgumentParser

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How a reading command prints: `--json`, or `-o json` in kubectl's spelling, for one JSON
/// document whose shape docs/JSON.md documents; text for people otherwise.
package struct OutputOptions: ParsableArguments {
    package enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        case json
    }

    package init() {}

    @Flag(help: "Print JSON (the shapes are in docs/JSON.md)") var json = false
    @Option(name: [.customShort("o"), .customLong("output")], help: "Output format") var format: Format = .text

    package var isJSON: Bool { json || format == .json }
}

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
