import TunnelTLS
import TunnelText
import TunnelYAML

/// Reading small YAML files strictly: a top-level mapping of known keys, each once, with line numbers.
package enum StrictYAML {
    package struct Entry {
        package let key: String
        package let value: YAMLNode
        package let line: Int
    }

    package static func readMapping(path: String, allowedKeys: [String], what: String, sizeLimit: Int)
        throws(CommandFailure) -> [Entry]
    {
        let bytes: [UInt8]
        do {
            bytes = try DurableFile.read(path: path, limit: sizeLimit)
        } catch {
            throw .usage(oneLine(error), .configInvalid)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .usage("\(path): not UTF-8 text; is this the right file?", .configInvalid)
        }
        return try parseMapping(text, source: path, allowedKeys: allowedKeys, what: what)
    }

    /// `source` names the text in messages (`source:LINE: …`).
    package static func parseMapping(_ text: String, source: String, allowedKeys: [String], what: String)
        throws(CommandFailure) -> [Entry]
    {
        let root: YAMLNode?
        do {
            root = try YAMLComposer.compose(text)
        } catch {
            throw .usage(describe(error, source: source), .configInvalid)
        }
        guard let root else { return [] }
        guard let mapping = root.mapping else {
            throw .usage(
                "\(source):\(root.line): expected KEY: VALUE lines at the top level, not a \(root.shape)",
                .configInvalid)
        }
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        for entry in mapping {
            let line = entry.key.line
            guard let key = scalarText(entry.key) else {
                throw .usage("\(source):\(line): keys must be plain words, not a \(entry.key.shape)", .configInvalid)
            }
            guard allowedKeys.contains(key) else {
                let hint =
                    Suggest.closest(to: key, in: allowedKeys).map { "did you mean \"\($0)\"?" }
                    ?? "known keys: \(allowedKeys.joined(separator: ", "))"
                throw .usage("\(source):\(line): unknown key \"\(key)\" (\(hint))", .configInvalid)
            }
            if let first = seen[key] {
                throw .usage(
                    "\(source):\(line): \"\(key)\" is set twice (first at line \(first)); keep one", .configInvalid)
            }
            if entry.value.isNull {
                throw .usage("\(source):\(line): \"\(key)\" has no value; give one or remove the line", .configInvalid)
            }
            seen[key] = line
            entries.append(Entry(key: key, value: entry.value, line: line))
        }
        return entries
    }

    /// The text of a scalar that is not null; nil for mappings, sequences and nulls.
    package static func scalarText(_ node: YAMLNode) -> String? {
        node.isNull ? nil : node.string
    }

    package static func describe(_ error: YAMLError, source: String) -> String {
        "\(source):\(error.line): not valid YAML: \(error.problem)"
    }
}
