import Multiplex
import Testing
import TunnelEdgeCore

/// A node agent's core driven on a virtual clock: what the `EdgeClient` does over real TLS,
/// decided here in microseconds.
struct EdgeNode {
    var core: EdgeCore
    var now = EdgeInstant(milliseconds: 0, unixSeconds: 1_800_000_000)

    /// A node with `replicas` gateways whose certificate was issued `age` seconds ago for `lifetime`.
    init(
        replicas: Int = 1, age: Int64 = 0, lifetime: Int64 = 3_600,
        reconnect: ReconnectSchedule = ReconnectSchedule(
            backoff: Backoff(base: .milliseconds(500), cap: .seconds(30)), settleMilliseconds: 1_000),
        random: any RandomNumberGenerator = LongestWait()
    ) {
        let issued = now.unixSeconds - age
        core = EdgeCore(
            configuration: EdgeCore.Configuration(
                replicas: replicas, start: 0, reconnect: reconnect,
                replacedBackoff: Backoff(base: .seconds(5), cap: .seconds(300), floor: 0.5)),
            certificate: CertificateDates(notBefore: issued, notAfter: issued + lifetime), random: random)
    }

    /// Every answer is also checked for what the shell relies on: at most one intent that
    /// starts IO, and it comes last.
    mutating func handle(_ event: EdgeCore.Event) -> [EdgeCore.Intent] {
        let intents = core.handle(event, now: now)
        let io = intents.indices.filter { Self.startsIO(intents[$0]) }
        #expect(io.isEmpty || io == [intents.count - 1], "\(event) → \(intents)")
        return intents
    }

    static func startsIO(_ intent: EdgeCore.Intent) -> Bool {
        switch intent {
        case .dial, .reenroll, .askGatewayTime: true
        default: false
        }
    }

    mutating func advance(milliseconds: UInt64) {
        now.milliseconds += milliseconds
        now.unixSeconds += Int64(milliseconds / 1000)
    }

    /// Starts and brings a session up on the first dial.
    mutating func connect() {
        _ = handle(.start)
        _ = handle(.sessionReady)
        _ = handle(.announcementAccepted)
    }

    /// The wait a retry intent asks for, or nil.
    static func wait(_ intents: [EdgeCore.Intent]) -> UInt64? {
        for case .retry(let milliseconds, _) in intents { return milliseconds }
        return nil
    }
}

private let lost = EdgeLoss(Failure(.internalError, "connection reset"))

@Suite("EdgeCore: session keeping and backoff")
struct EdgeCoreSessionTests {
    @Test("a dial that fails waits and dials the gateway again, longer each time; a timer of another phase is ignored")
    func dialFailuresBackOff() {
        var node = EdgeNode()
        #expect(node.handle(.start) == [.dial(replica: 0, certificatesAt: nil)])
        var waits: [UInt64] = []
        for _ in 0..<4 {
            let intents = node.handle(.dialFailed(Failure(.internalError, "refused")))
            waits.append(EdgeNode.wait(intents) ?? 0)
            #expect(node.handle(.retryTimerFired) == [.dial(replica: 0, certificatesAt: nil)])
        }
        #expect(waits == [500, 1_000, 2_000, 4_000])
        #expect(node.handle(.retryTimerFired) == [], "a retry timer while dialing does nothing")
    }

    @Test("once the gateway accepted the node, a loss after it settled waits at most the base")
    func acceptanceStartsOver() {
        var node = EdgeNode()
        _ = node.handle(.start)
        for _ in 0..<10 {
            _ = node.handle(.dialFailed(Failure(.internalError, "refused")))
            _ = node.handle(.retryTimerFired)
        }
        _ = node.handle(.sessionReady)
        _ = node.handle(.announcementAccepted)
        node.advance(milliseconds: 3_000)
        let intents = node.handle(.sessionClosed(lost))
        #expect(intents.first == .cancelRenewal)
        #expect(EdgeNode.wait(intents) == 500)
    }

    @Test("sessions that end within a second of acceptance are flaps: the waits widen as for failures")
    func flapsWiden() {
        var node = EdgeNode()
        _ = node.handle(.start)
        var waits: [UInt64] = []
        for _ in 0..<4 {
            _ = node.handle(.sessionReady)
            _ = node.handle(.announcementAccepted)
            node.advance(milliseconds: 100)
            let wait = EdgeNode.wait(node.handle(.sessionClosed(lost))) ?? 0
            waits.append(wait)
            node.advance(milliseconds: wait)
            _ = node.handle(.retryTimerFired)
        }
        #expect(waits == [1_000, 2_000, 4_000, 8_000])
    }

    @Test("a node with three replicas fails over within the jitter and backs off after a full round")
    func failover() {
        var node = EdgeNode(replicas: 3)
        #expect(node.handle(.start) == [.dial(replica: 0, certificatesAt: nil)])
        var dialed: [Int] = []
        var waits: [UInt64] = []
        for _ in 0..<3 {
            waits.append(EdgeNode.wait(node.handle(.dialFailed(Failure(.internalError, "refused")))) ?? 0)
            for case .dial(let replica, _) in node.handle(.retryTimerFired) { dialed.append(replica) }
        }
        #expect(dialed == [1, 2, 0])
        #expect(waits[0] <= 1_000 && waits[1] <= 1_000)
        #expect(waits[2] == 500, "a full round of failures waits the backoff's first ceiling")
    }

    @Test("a replaced session waits the slow backoff, which grows, and starts over after a long session")
    func replacedSlowsDown() {
        var node = EdgeNode()
        let replaced = EdgeLoss(.replaced, Failure(.internalError, "replaced"))
        node.connect()
        node.advance(milliseconds: 10_000)
        #expect(EdgeNode.wait(node.handle(.sessionClosed(replaced))) == 5_000)
        _ = node.handle(.retryTimerFired)
        _ = node.handle(.sessionReady)
        node.advance(milliseconds: 10_000)
        #expect(EdgeNode.wait(node.handle(.sessionClosed(replaced))) == 10_000)
        _ = node.handle(.retryTimerFired)
        _ = node.handle(.sessionReady)
        node.advance(milliseconds: 300_000)
        #expect(EdgeNode.wait(node.handle(.sessionClosed(replaced))) == 5_000, "a session of 300 s resets it")
    }

    @Test("the slow backoff is jittered but never below half its ceiling")
    func replacedJitter() {
        var node = EdgeNode(random: Seeded(state: 5))
        let replaced = EdgeLoss(.replaced, Failure(.internalError, "replaced"))
        node.connect()
        node.advance(milliseconds: 10_000)
        let wait = EdgeNode.wait(node.handle(.sessionClosed(replaced))) ?? 0
        #expect((2_500...5_000).contains(wait), "\(wait)")
    }

    @Test("after stop every event is dropped")
    func stopIsFinal() {
        var node = EdgeNode()
        node.connect()
        #expect(node.handle(.stop) == [.shutDown])
        #expect(node.core.isStopped)
        #expect(node.handle(.sessionClosed(lost)) == [])
        #expect(node.handle(.retryTimerFired) == [])
        #expect(node.handle(.renewalTimerFired) == [])
        #expect(node.handle(.gatewayTime(0)) == [])
    }
}

@Suite("Which service serves a stream")
struct ServiceDirectoryTests {
    private let directory = ServiceDirectory(
        local: ["ssh", "web"], builtIn: ["shell", "logs"], kubernetes: "kubernetes")

    @Test("a name is served by what the node configured under it; anything else is unknown")
    func routes() {
        #expect(directory.route("ssh") == .local)
        #expect(directory.route("shell") == .builtIn)
        #expect(directory.route("kubernetes") == .kubernetes)
        for asked in ["", "SSH", "10.0.0.5:22", "ssh ", "kubernetes\u{0}"] {
            #expect(directory.route(asked) == .unknown, "\(asked)")
        }
        #expect(ServiceDirectory(local: ["ssh"], builtIn: [], kubernetes: nil).route("kubernetes") == .unknown)
    }

    @Test("the node announces every name once, sorted")
    func announced() {
        #expect(directory.names == ["kubernetes", "logs", "shell", "ssh", "web"])
    }
}
