import Multiplex

/// How many bytes of one connection may wait below the session's scheduler (encrypted, in the
/// socket's write queue) before the connection stops pulling frames from the session.
///
/// Whatever waits there is first-in first-out: a keystroke framed after it waits for all of it to
/// cross the link. So the queue holds only what keeps the link busy until the next refill, sized
/// from the link itself: one round trip of the measured send rate (the kernel already keeps a
/// round trip in flight; this only bridges the moment until the next refill), within
/// `floor...cap`. The kernel's own share stays small too (`notSentLowWater`, TCP_NOTSENT_LOWAT),
/// so the rest of a backlog waits in the streams' queues, where the scheduler can still put
/// interactive frames first.
///
/// Rate rule: bytes the kernel took, counted only while the connection was held back by the
/// socket (more frames waited than it let through: the link is the limit, not the application),
/// over spans of at least `sampleSpan`; each span is one sample, smoothed `7/8 old + 1/8 new`
/// after a first sample that sets it. An application-limited span says nothing about the link and
/// is dropped. Sans-IO: the owner hands in the time, the bytes and the kernel's round-trip time.
struct TransmitQueueLimit: Equatable {
    /// Never less than this: a small frame burst and one TLS record always fit.
    static let floor = 16 * 1024
    /// Never more than this: the fixed limit the queue had before it was measured.
    static let cap = 1 << 20
    /// The kernel's unsent bytes per socket (TCP_NOTSENT_LOWAT): a few frames, so a keystroke
    /// never waits behind more than that inside the kernel.
    static let notSentLowWater: UInt32 = 16 * 1024
    /// Shortest span one rate sample covers, so a single write completion's timing is no sample.
    static let sampleSpan: Duration = .milliseconds(10)

    /// Above this many queued bytes no more frames are pulled.
    private(set) var highWater = floor
    /// Smoothed send rate in bytes per second; nil until the first sample.
    private(set) var bytesPerSecond: Double?
    private var spanStart: Timestamp?
    private var spanBytes = 0

    /// Pulling resumes once the queue drains below this.
    var lowWater: Int { highWater / 2 }

    /// Plaintext per TLS record: a quarter of the queue, 4 KiB to TLS's 16 KiB. A record is
    /// decrypted only once it has arrived whole, so on a slow link (a short queue) a keystroke
    /// framed into a record waits for 4 KiB of it, not 16; on a fast one records stay full size.
    var recordSize: Int { min(max(highWater / 4, 4 * 1024), 16 * 1024) }

    /// The kernel took `count` queued bytes at `now`. `socketLimited`: the connection had more
    /// frames to send than the queue let through. `roundTrip`: the kernel's smoothed RTT, read only
    /// when a sample is complete (nil if it cannot be read; the limit then stays).
    mutating func kernelTook(_ count: Int, at now: Timestamp, socketLimited: Bool, roundTrip: () -> Duration?) {
        guard socketLimited else {
            spanStart = nil
            return
        }
        guard let start = spanStart else {
            // The span starts here; these bytes were queued before it.
            spanStart = now
            spanBytes = 0
            return
        }
        spanBytes += count
        let elapsed = now.since(start)
        guard elapsed >= Self.sampleSpan else { return }
        let sample = Double(spanBytes) / Self.seconds(elapsed)
        bytesPerSecond = bytesPerSecond.map { $0 * 7 / 8 + sample / 8 } ?? sample
        spanStart = now
        spanBytes = 0
        if let rate = bytesPerSecond, let roundTrip = roundTrip() {
            let bytesInFlight = rate * Self.seconds(roundTrip)
            highWater = Int(min(max(bytesInFlight, Double(Self.floor)), Double(Self.cap)))
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.wholeNanoseconds) / 1e9
    }
}
