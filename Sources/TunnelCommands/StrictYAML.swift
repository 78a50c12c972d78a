import Foundation
import TunnelTLS
import Yams

/// Reading small YAML files strictly: a top-level mapping of known keys, each once, with line numbers.
enum StrictYAML {
    struct Entry {
        let key: String
        let value: Node
        let line: Int
    }

    static func readMapping(path: String, allowedKeys: [String], what: String, sizeLimit: Int) throws(CommandFailure) -> [Entry] {
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
    static func parseMapping(_ text: String, source: String, allowedKeys: [String], what: String) throws(CommandFailure) -> [Entry] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw .usage(describeYAMLError(error, source: source), .configInvalid)
        }
        guard let root else { return [] }
        guard case .mapping(let mapping) = root else {
            throw .usage("\(source):\(root.mark?.line ?? 1): expected KEY: VALUE lines at the top level, not a \(shape(root))", .configInvalid)
        }
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        for (keyNode, value) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let key = scalarText(keyNode) else {
                throw .usage("\(source):\(line): keys must be plain words, not a \(shape(keyNode))", .configInvalid)
            }
            guard allowedKeys.contains(key) else {
                let hint = Suggest.closest(to: key, in: allowedKeys).map { "did you mean \"\($0)\"?" }
                    ?? "known keys: \(allowedKeys.joined(separator: ", "))"
                throw .usage("\(source):\(line): unknown key \"\(key)\" (\(hint))", .configInvalid)
            }
            if let first = seen[key] {
                throw .usage("\(source):\(line): \"\(key)\" is set twice (first at line \(first)); keep one", .configInvalid)
            }
            if isNull(value) {
                throw .usage("\(source):\(line): \"\(key)\" has no value; give one or remove the line", .configInvalid)
            }
            seen[key] = line
            entries.append(Entry(key: key, value: value, line: line))
        }
        return entries
    }

    /// The text of a scalar that is not null; nil for mappings, sequences and nulls.
    static func scalarText(_ node: Node) -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else { return nil }
        return scalar.string
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    static func shape(_ node: Node) -> String {
        switch node {
        case .scalar: return "single value"
        case .mapping: return "mapping"
        case .sequence: return "list"
        }
    }

    static func describeYAMLError(_ error: any Error, source: String) -> String {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
                return "\(source):\(mark.line): not valid YAML: \(problem)"
            default:
                break
            }
        }
        return "\(source): not valid YAML: \(oneLine(error))"
    }
}
