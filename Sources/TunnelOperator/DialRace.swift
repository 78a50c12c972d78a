/// When an operator's client dials the gateway again before an attempt is through. During a
/// reconnect storm the gateway's accept queue can be full (the kernel drops the SYN, and TCP
/// resends it only after a second, then two more) or its admission can turn a connection away
/// at the door without a word (it cannot tell an operator from a node before the ClientHello).
/// So, as happy eyeballs races addresses, another attempt begins `raceAfter` milliseconds after
/// the last one began, while none has finished its handshake, at most `maximumAttempts` in all.
/// The first to finish its handshake wins and the others are closed; a refusal the gateway
/// says (a GOAWAY with a code, a TLS alert) is the answer and ends the race.
///
/// Decisions, not actions: `OperatorClient` dials, waits and closes what it is told; tests
/// drive it on a virtual clock (`now` in milliseconds).
struct DialRace {
    /// What to do now.
    enum Step: Equatable {
        /// Begin another attempt (and call `dialed`).
        case dial
        /// Ask again at this time, unless an attempt reports first.
        case wait(until: UInt64)
        /// Nothing until an attempt reports.
        case idle
        /// Every attempt failed; the last failure is the answer.
        case fail
    }

    let raceAfter: UInt64
    let maximumAttempts: Int
    private(set) var attempts = 0
    /// Attempts begun that have neither won nor failed.
    private(set) var inFlight = 0
    private var lastStart: UInt64 = 0
    /// An attempt won or a refusal ended the race.
    private(set) var isOver = false

    init(raceAfter: UInt64, maximumAttempts: Int) {
        self.raceAfter = raceAfter
        self.maximumAttempts = max(1, maximumAttempts)
    }

    /// The next step: the first attempt at once, another `raceAfter` after the last began.
    func next(now: UInt64) -> Step {
        guard !isOver else { return .idle }
        guard attempts > 0 else { return .dial }
        guard attempts < maximumAttempts else { return inFlight == 0 ? .fail : .idle }
        let due = lastStart + raceAfter
        return now >= due ? .dial : .wait(until: due)
    }

    /// An attempt began.
    mutating func dialed(now: UInt64) {
        attempts += 1
        inFlight += 1
        lastStart = now
    }

    /// An attempt finished its handshake: true if it wins (the caller closes it otherwise).
    mutating func ready() -> Bool {
        inFlight -= 1
        guard !isOver else { return false }
        isOver = true
        return true
    }

    /// An attempt failed; `final` when the gateway said why (a refusal, not a silent close),
    /// which ends the race: true then if the caller should report it.
    mutating func failed(final: Bool) -> Bool {
        inFlight -= 1
        guard final, !isOver else { return false }
        isOver = true
        return true
    }
}
