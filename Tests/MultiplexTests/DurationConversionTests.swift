import Testing

@testable import Multiplex

/// `Duration.wholeMilliseconds`, the one conversion the timers and the decisions use: hand-written
/// ones dropped the fraction of a second (a 1.5 s timeout became 1 s).
@Suite("Duration to milliseconds")
struct DurationConversionTests {
    @Test func keepsTheFractionOfASecond() {
        #expect(Duration.milliseconds(1500).wholeMilliseconds == 1500)
        #expect(Duration.seconds(2).wholeMilliseconds == 2000)
        #expect(Duration.microseconds(2999).wholeMilliseconds == 2)
    }

    @Test func clampsNegativeAndHugeDurations() {
        #expect(Duration.seconds(-3).wholeMilliseconds == 0)
        #expect(Duration.milliseconds(-1).wholeMilliseconds == 0)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == UInt64.max / 1_000_000)
    }
}
