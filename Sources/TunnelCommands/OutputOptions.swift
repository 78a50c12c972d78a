import ArgumentParser

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
