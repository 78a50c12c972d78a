/// Text from others, made safe to print for a person: whatever a peer, a node or an old audit
/// record sent, the result is one line that moves no cursor, sets no window title and reverses
/// no text. Used by every human-readable output (tables, `--events`, errors, GOAWAY reasons, log
/// lines quoting peer text); JSON output stays exact and never goes through here.
public enum InertText {
    /// `text` with every character that could act on a terminal or forge a line written as a
    /// visible escape:
    ///
    /// - `\n`, `\r`, `\t` as those two characters; `\` itself as `\\`, so an escape can never
    ///   be confused with text that merely looks like one;
    /// - other C0 controls and DEL as `\x1b`, `\x7f` (ESC starts every terminal sequence: clear
    ///   screen, OSC window titles, hidden text);
    /// - C1 controls (U+0080–U+009F; some terminals take U+009B as CSI), format characters such
    ///   as the bidi overrides U+202E and isolates U+2066–U+2069 (which reorder what is shown),
    ///   zero-width characters, and the line and paragraph separators, as `\u{202e}`.
    ///
    /// Everything else, including ordinary non-ASCII letters, is kept.
    public static func escape(_ text: some StringProtocol) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "\\") }) else {
            return String(text)
        }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\x" + hex(scalar.value, width: 2)
            case _ where scalar.value < 0x7F:
                out.unicodeScalars.append(scalar)
            case _ where isInvisibleOrActive(scalar):
                out += "\\u{" + hex(scalar.value, width: 1) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// JSON text with the same characters written as JSON escapes (`\u202e`, surrogate pairs
    /// above U+FFFF): the same JSON value, so it stays exact, but inert on a terminal. For JSON
    /// shown to a person (`tunnel audit show`); an encoder already escapes C0 controls, not DEL,
    /// C1 or the format characters.
    public static func escapeJSON(_ json: String) -> String {
        guard json.utf8.contains(where: { $0 == 0x7F || $0 >= 0x80 }) else { return json }
        var out = ""
        out.reserveCapacity(json.utf8.count + 8)
        for scalar in json.unicodeScalars {
            guard scalar.value == 0x7F || (scalar.value > 0x7F && isInvisibleOrActive(scalar)) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            for unit in String(scalar).utf16 {
                out += "\\u" + hex(UInt32(unit), width: 4)
            }
        }
        return out
    }

    /// Controls (Cc: C1), formats (Cf: bidi marks, overrides and isolates, zero-width joiners),
    /// line and paragraph separators, and private-use or unassigned code points, which a
    /// terminal may draw as anything.
    private static func isInvisibleOrActive(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate: true
        default: false
        }
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
