import Testing

@testable import TunnelOperator

/// The operator client's racing connects on a virtual clock (milliseconds).
@Suite("Dial race")
struct DialRaceTests {
    @Test(
        "another attempt begins 400 ms after the last while none is through, three at most, and the first through wins")
    func racesUntilOneWins() {
        var race = DialRace(raceAfter: 400, maximumAttempts: 3)
        #expect(race.next(now: 0) == .dial)
        race.dialed(now: 0)
        #expect(race.next(now: 0) == .wait(until: 400))
        #expect(race.next(now: 399) == .wait(until: 400))
        #expect(race.next(now: 400) == .dial, "the first is not through after 400 ms (a dropped SYN, say)")
        race.dialed(now: 400)
        #expect(race.next(now: 500) == .wait(until: 800))
        race.dialed(now: 800)
        #expect(race.next(now: 5_000) == .idle, "three begun: wait for them")
        let first = race.ready(), second = race.ready(), third = race.failed(final: false)
        #expect(first, "the first through wins")
        #expect(!second, "a later one loses and is closed")
        #expect(!third)
        #expect(race.inFlight == 0 && race.next(now: 6_000) == .idle)
    }

    @Test("a silent close is retried at the race's pace; once all attempts failed, the last failure is the answer")
    func silentClosesAreRetried() {
        var race = DialRace(raceAfter: 400, maximumAttempts: 2)
        race.dialed(now: 0)
        let closed = race.failed(final: false)
        #expect(!closed, "closed at the door without a word")
        #expect(race.next(now: 100) == .wait(until: 400), "not sooner than 400 ms after the last began")
        #expect(race.next(now: 400) == .dial)
        race.dialed(now: 400)
        #expect(race.next(now: 900) == .idle)
        let closedAgain = race.failed(final: false)
        #expect(!closedAgain)
        #expect(race.next(now: 900) == .fail)
    }

    @Test("a refusal the gateway says ends the race at once, and later results are ignored")
    func refusalEndsTheRace() {
        var race = DialRace(raceAfter: 400, maximumAttempts: 3)
        race.dialed(now: 0)
        race.dialed(now: 400)
        let refused = race.failed(final: true)
        #expect(refused, "the refusal is reported")
        #expect(race.next(now: 800) == .idle, "no more attempts")
        let late = race.ready()
        #expect(!late, "the other attempt is closed, not used")
    }
}
