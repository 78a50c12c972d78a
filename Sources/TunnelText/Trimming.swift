extension StringProtocol {
    /// The text without leading and trailing ASCII spaces, tabs, carriage returns and newlines:
    /// what a token pasted from a terminal or a one-line /proc file carries around it. ASCII only,
    /// so it needs no Unicode tables from Foundation (the edge agent links none; docs/BENCHMARKS.md).
    public func trimmingASCIIWhitespace() -> String {
        func isSpace(_ character: Character) -> Bool {
            character == " " || character == "\t" || character == "\n" || character == "\r" || character == "\r\n"
        }
        var text = self[...]
        while let first = text.first, isSpace(first) { text = text.dropFirst() }
        while let last = text.last, isSpace(last) { text = text.dropLast() }
        return String(text)
    }
}
