import Testing

@testable import Multiplex

/// One stream over a simulated link with real latency, on the virtual clock: window auto-tuning
/// must let it fill the link, where a fixed 256 KiB window would carry only window/RTT.
@Suite("Long fat link")
struct LongFatLinkTests {
    /// Bytes that left one side and arrive at the other at `arrival`.
    struct InFlight {
        var arrival: Timestamp
        var bytes: [UInt8]
    }

    struct Outcome {
        var bytesInLastSecond = 0
        var finalWindow: Int64 = 0
        var maxInFlightData = 0
    }

    static func run(oneWayDelay: Duration, bytesPerMillisecond: Int, seconds: Int, maxStreamWindow: UInt32) -> Outcome {
        var configuration = SessionConfiguration()
        configuration.maxStreamWindow = maxStreamWindow
        var now = Timestamp(nanoseconds: 1_000_000_000)
        let sender = Session(role: .dialer, configuration: configuration, now: now)
        let receiver = Session(role: .acceptor, configuration: configuration, now: now)
        let id = try! sender.openStream(metadata: [])
        let chunk = [UInt8](repeating: 0x5A, count: 256 * 1024)
        var toReceiver: [InFlight] = []
        var toSender: [InFlight] = []
        var outcome = Outcome()
        let end = now + .seconds(seconds)
        let lastSecond = now + .seconds(seconds - 1)
        var received = 0
        var delivered = 0
        while now < end {
            now = now + .milliseconds(1)
            sender.advanceTime(to: now)
            receiver.advanceTime(to: now)
            while let first = toReceiver.first, first.arrival <= now {
                receiver.receive(toReceiver.removeFirst().bytes, now: now)
            }
            while let event = receiver.pollEvent() {
                switch event {
                case .streamOpened(let opened, _, _): try! receiver.accept(opened)
                case .data(let stream, let bytes):
                    received += bytes.count
                    if now >= lastSecond { outcome.bytesInLastSecond += bytes.count }
                    receiver.consumed(bytes.count, on: stream)
                default: break
                }
            }
            while let first = toSender.first, first.arrival <= now {
                sender.receive(toSender.removeFirst().bytes, now: now)
            }
            while sender.pollEvent() != nil {}
            while (sender.queuedBytes(of: id) ?? 0) < chunk.count * 2 {
                try! sender.write(chunk, on: id)
            }
            var wire: [UInt8] = []
            sender.pollTransmit(into: &wire, maxBytes: bytesPerMillisecond)
            toReceiver.append(InFlight(arrival: now + oneWayDelay, bytes: wire))
            var replies: [UInt8] = []
            receiver.pollTransmit(into: &replies)
            toSender.append(InFlight(arrival: now + oneWayDelay, bytes: replies))
            delivered += wire.count
            outcome.maxInFlightData = max(outcome.maxInFlightData, delivered - received)
        }
        outcome.finalWindow = receiver.receiveWindow(of: id) ?? 0
        return outcome
    }

    @Test("a window-limited stream grows its window to 16 MiB and fills a 50 ms link")
    func windowGrows() {
        let outcome = Self.run(
            oneWayDelay: .milliseconds(25), bytesPerMillisecond: 1 << 20, seconds: 4, maxStreamWindow: 16 << 20)
        let fixedWindowRate = 256 * 1024 * 20 // 256 KiB per 50 ms round trip, per second
        #expect(outcome.finalWindow == 16 << 20)
        #expect(
            outcome.bytesInLastSecond > 20 * fixedWindowRate,
            "\(outcome.bytesInLastSecond) B/s in the last second; a fixed window carries \(fixedWindowRate)")
        // Frame headers aside, data in flight never exceeds what the receiver granted.
        #expect(outcome.maxInFlightData <= (16 << 20) + (16 << 20) / Limits.maxDataPayload * Limits.frameHeaderLength)
    }

    @Test("with growth capped at the initial window, the same link carries only window per round trip")
    func fixedWindowIsSlow() {
        let outcome = Self.run(
            oneWayDelay: .milliseconds(25), bytesPerMillisecond: 1 << 20, seconds: 2, maxStreamWindow: 256 * 1024)
        #expect(outcome.finalWindow == 256 * 1024)
        #expect(outcome.bytesInLastSecond <= 256 * 1024 * 21)
    }
}
