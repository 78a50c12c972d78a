extension HTTPHead {
    /// The head as bytes on the wire: the first line, each header in order as given, and the
    /// blank line. Refuses anything that would let a value end the line or the head (header
    /// injection and response splitting), so a rewriting proxy can pass values it was sent.
    public func encoded() throws(HTTPError) -> [UInt8] {
        var out: [UInt8] = []
        switch start {
        case .request(let method, let target):
            guard Self.isToken(method) else { throw .unencodable(field: "method") }
            guard !target.isEmpty, target.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
                throw .unencodable(field: "target")
            }
            out += Array("\(method) \(target) \(version)\r\n".utf8)
        case .response(let status, let reason):
            guard (100...999).contains(status) else { throw .unencodable(field: "status") }
            guard Self.isFieldText(reason) else { throw .unencodable(field: "reason phrase") }
            out += Array("\(version) \(status) \(reason)\r\n".utf8)
        }
        for header in headers {
            guard Self.isToken(header.name) else { throw .unencodable(field: "header name") }
            guard Self.isFieldText(header.value) else { throw .unencodable(field: "value of \(header.name)") }
            out += Array("\(header.name): \(header.value)\r\n".utf8)
        }
        out += [13, 10]
        return out
    }

    /// RFC 9110 §5.6.2 tchar: letters, digits and ``!#$%&'*+-.^_`|~``.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                    || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
    }

    /// Field text: tab, visible characters and non-ASCII; no other control character.
    static func isFieldText(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
