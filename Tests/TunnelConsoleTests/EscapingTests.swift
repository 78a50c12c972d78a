import Testing

@testable import TunnelConsole

@Suite struct EscapingTests {
    @Test func recordTextCannotBecomeMarkupOrEscapeSequences() {
        #expect(HTML.escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(HTML.escape("a\u{1B}[31mred\n\"'&") == "a\\x1b[31mred\\x0a&quot;&#39;&amp;")
    }

    @Test func queryRoundTripsThroughEncoding() {
        var filter = SessionFilter()
        filter.service = "a b&c=<d>"
        filter.from = "2026-01-02"
        let parsed = SessionFilter(RequestTarget("/sessions?" + filter.query))
        #expect(parsed == filter)
    }

    @Test func logTimesParseWithoutAFormatter() {
        #expect(LogTime.milliseconds("1970-01-01T00:00:01.500Z") == 1500)
        #expect(LogTime.milliseconds("2026-12-04T23:23:25.243Z") == 1_796_426_605_243)
        #expect(LogTime.iso(1_796_426_605_243) == "2026-12-04T23:23:25.243Z")
        #expect(LogTime.milliseconds("yesterday") == nil)
    }

    @Test func csvCellsCannotRunAsFormulas() {
        #expect(ConsoleRoutes.csvField("=HYPERLINK(\"x\")") == "\"'=HYPERLINK(\"\"x\"\")\"")
    }
}
