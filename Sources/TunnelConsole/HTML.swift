/// Text from records goes into pages only through `escape`: nothing a node or an operator wrote
/// can become markup, and control characters (terminal escape sequences, line breaks that could
/// forge a table row in a copy-paste) show as visible `\xNN` text.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case _
            where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028
                || scalar.value == 0x2029:
                out += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A link whose address and text are both escaped.
    static func link(_ href: String, _ text: String, className: String? = nil) -> String {
        "<a href=\"\(escape(href))\"\(className.map { " class=\"\($0)\"" } ?? "")>\(escape(text))</a>"
    }

    /// A table row of already-escaped cells.
    static func row(_ cells: [String], header: Bool = false) -> String {
        let tag = header ? "th" : "td"
        return "<tr>" + cells.map { "<\(tag)>\($0)</\(tag)>" }.joined() + "</tr>\n"
    }

    /// A whole page: every asset from the console itself (`'self'` in the CSP), no inline script.
    static func page(title: String, banner: String, body: String, stylesheets: [String] = [], scripts: [String] = [])
        -> String
    {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
        <title>\(escape(title)) · tunnel audit</title>
        <link rel="stylesheet" href="/assets/console.css">
        \(stylesheets.map { "<link rel=\"stylesheet\" href=\"\($0)\">" }.joined())
        \(scripts.map { "<script src=\"\($0)\" defer></script>" }.joined())
        </head><body>
        <header><strong>tunnel audit</strong>
        <nav><a href="/sessions">Sessions</a> <a href="/nodes">Nodes</a> <a href="/verification">Verification</a></nav></header>
        \(banner)
        <main><h1>\(escape(title))</h1>
        \(body)
        </main></body></html>
        """
    }
}
