internal import CLibYAML

/// Why a text is not a YAML document this reader accepts, and the line (1-based) where it shows.
public struct YAMLError: Error, Sendable, Equatable {
    public let line: Int
    public let problem: String

    public init(line: Int, problem: String) {
        self.line = line
        self.problem = problem
    }
}

/// Composes small YAML texts (config files, kubeconfigs) into `YAMLNode`s with libyaml's parser.
///
/// Hostile input is bounded: nesting depth and node count have limits, and aliases (`*name`),
/// the way YAML repeats one node many times over, are refused (no file this reads uses them).
public enum YAMLComposer {
    public struct Limits: Sendable {
        public var depth = 32
        public var nodes = 100_000
        public init() {}
    }

    /// The document's root; nil for an empty document (nothing but comments, say).
    public static func compose(_ text: String, limits: Limits = Limits()) throws(YAMLError) -> YAMLNode? {
        var bytes = Array(text.utf8)
        bytes.append(0) // libyaml never reads past `size`; the 0 only keeps the buffer non-empty
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw YAMLError(line: 1, problem: "out of memory") }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { buffer throws(YAMLError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count - 1)
            var builder = TreeBuilder(limits: limits)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "unreadable"
                    throw YAMLError(line: Int(parser.problem_mark.line) + 1, problem: problem)
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return builder.root }
                try builder.add(event)
            }
        }
    }
}

/// Builds the tree from libyaml's events with an explicit stack, so depth is counted, not recursed.
private struct TreeBuilder {
    enum Open {
        case mapping(line: Int, entries: [YAMLNode.Entry], key: YAMLNode?)
        case sequence(line: Int, items: [YAMLNode])
    }

    let limits: YAMLComposer.Limits
    var stack: [Open] = []
    var root: YAMLNode?
    var documents = 0
    var nodes = 0

    init(limits: YAMLComposer.Limits) {
        self.limits = limits
    }

    mutating func add(_ event: yaml_event_t) throws(YAMLError) {
        let line = Int(event.start_mark.line) + 1
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            guard documents == 1 else {
                throw YAMLError(line: line, problem: "a second document (---); a file holds one")
            }
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            try finish(YAMLNode(.scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE), line: line))
        case YAML_MAPPING_START_EVENT:
            try open(.mapping(line: line, entries: [], key: nil), line: line)
        case YAML_SEQUENCE_START_EVENT:
            try open(.sequence(line: line, items: []), line: line)
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
            switch stack.removeLast() {
            case .mapping(let start, let entries, _): try finish(YAMLNode(.mapping(entries), line: start))
            case .sequence(let start, let items): try finish(YAMLNode(.sequence(items), line: start))
            }
        case YAML_ALIAS_EVENT:
            throw YAMLError(line: line, problem: "aliases (*name) are not accepted; write the value out")
        default:
            break // stream start, document end: nothing to build
        }
    }

    private mutating func open(_ collection: Open, line: Int) throws(YAMLError) {
        guard stack.count < limits.depth else {
            throw YAMLError(line: line, problem: "nested deeper than \(limits.depth) levels")
        }
        try count(line: line)
        stack.append(collection)
    }

    private mutating func count(line: Int) throws(YAMLError) {
        nodes += 1
        guard nodes <= limits.nodes else { throw YAMLError(line: line, problem: "more than \(limits.nodes) values") }
    }

    /// A complete node goes into the collection that is open, or becomes the root.
    private mutating func finish(_ node: YAMLNode) throws(YAMLError) {
        if case .scalar = node.content { try count(line: node.line) }
        guard let top = stack.popLast() else { return root = node }
        switch top {
        case .mapping(let line, var entries, let key):
            if let key {
                entries.append(YAMLNode.Entry(key: key, value: node))
                stack.append(.mapping(line: line, entries: entries, key: nil))
            } else {
                stack.append(.mapping(line: line, entries: entries, key: node))
            }
        case .sequence(let line, var items):
            items.append(node)
            stack.append(.sequence(line: line, items: items))
        }
    }
}
