import Testing
import TunnelText

@Suite("Inert text for human output")
struct InertTextTests {
    @Test("newlines, tabs and carriage returns cannot start a forged line")
    func lineBreaks() {
        #expect(InertText.escape("a\nb\r\nc\td") == "a\\nb\\r\\nc\\td")
        #expect(
            InertText.escape("2026-01-01  stream_open  node=x\n7  2026  forged")
                == "2026-01-01  stream_open  node=x\\n7  2026  forged")
    }

    @Test("terminal escapes (clear screen, OSC window title, hidden text) arrive as visible text")
    func terminalEscapes() {
        #expect(InertText.escape("\u{1b}[2J\u{1b}[H") == "\\x1b[2J\\x1b[H")
        #expect(InertText.escape("\u{1b}]0;pwned\u{07}") == "\\x1b]0;pwned\\x07")
        #expect(InertText.escape("\u{1b}[8mhidden") == "\\x1b[8mhidden")
        #expect(InertText.escape("a\u{7f}b\u{0}") == "a\\x7fb\\x00")
    }

    @Test("C1 controls (CSI as one character), bidi overrides and zero-width characters are escaped")
    func unicodeControls() {
        #expect(InertText.escape("\u{9b}2J") == "\\u{9b}2J")
        #expect(InertText.escape("\u{85}next") == "\\u{85}next")
        #expect(InertText.escape("evil\u{202E}gpj.exe") == "evil\\u{202e}gpj.exe")
        #expect(InertText.escape("\u{2066}x\u{2069}") == "\\u{2066}x\\u{2069}")
        #expect(InertText.escape("a\u{200B}b") == "a\\u{200b}b")
        #expect(InertText.escape("line\u{2028}sep") == "line\\u{2028}sep")
    }

    @Test("a backslash is doubled, so an escape is never ambiguous; plain text and letters are kept")
    func unambiguous() {
        #expect(InertText.escape("a\\nb") == "a\\\\nb")
        #expect(InertText.escape("node-17 ok") == "node-17 ok")
        #expect(InertText.escape("Grüße, 東京") == "Grüße, 東京")
    }

    @Test("whatever goes in, what comes out is one line of printable characters")
    func alwaysInert() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let scalars = (0..<40).compactMap { _ in Unicode.Scalar(UInt32.random(in: 0...0x2FFF, using: &generator)) }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            let shown = InertText.escape(text)
            #expect(
                !shown.unicodeScalars.contains {
                    $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.properties.generalCategory == .format
                })
        }
    }
}
