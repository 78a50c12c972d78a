import Multiplex
import TunnelIO

/// How many bytes of one connection may wait below the session's scheduler (encrypted, in the
/// socket's write queue, unsent in the kernel) before the connection stops pulling frames.
///
/// Whatever waits there is first-in first-out: a keystroke framed after it waits for all of it to
/// cross the link. So frames are pulled only while the kernel takes them at once (the socket's
/// write queue is empty), one `writeChunk` per socket write and at most `highWater` per loop turn;
/// the kernel's unsent share is `notSentLowWater` (TCP_NOTSENT_LOWAT), which wakes the loop for
/// the next chunk while that share still keeps the link busy (and which the kernel enforces only
/// at a segment's start: `endsEachWrite`). A keystroke then waits behind at
/// most the kernel's share, one chunk past it and one chunk in the write queue; the rest of a
/// backlog waits in the streams' queues, where the scheduler still puts interactive frames first.
/// Both scale with the measured send rate: a slow link gets a few KiB (a few ms of it), a fast
/// one larger chunks and one round trip per turn, so its loop turns and syscalls stay few.
///
/// Rate rule: the bytes the kernel took (a running count the owner reads when a flush ends, not a
/// sum of write completions, so a write the kernel takes at once needs no completion), counted
/// only across spans in which the kernel kept refusing bytes, so the link, not the application,
/// set the pace. A sample ends only where the kernel has just taken all it refused before and the
/// flush refilled its queue up to a refusal again (`refused(afterDrain: true)`): every sample then
/// starts and ends with the kernel's queue in the same state, where one ending in the middle of a
/// stall (a flush for a read while the peer took nothing) read as a rate near zero. A span lasts
/// at least `sampleSpan` and is one sample, smoothed `7/8 old + 1/8 new` after a first sample
/// that sets it. A flush at whose end the kernel had taken everything ends the span: an
/// application-limited spell (nothing to send, or a turn whose own budget ran out while the kernel
/// kept taking) says nothing about the link, and the idle time after it is no link time. Sans-IO:
/// the owner hands in the time, the count, how the flush ended and the kernel's path measurements.
struct TransmitQueueLimit: Equatable {
    /// Never less than this per turn: a small frame burst and one TLS record always fit.
    static let floor = 16 * 1024
    /// Never more than this per turn: the fixed limit the queue had before it was measured.
    static let cap = 1 << 20
    /// The kernel's unsent share before the rate is known: a few frames.
    static let initialNotSentLowWater = 16 * 1024
    /// The kernel's largest unsent share: 2 ms of a 1 Gbit/s link. On a fast path the share (and
    /// so each socket write) must grow with the rate, or the loop pays a syscall and a wakeup per
    /// few KiB: held at 16 KiB, loopback took ten times the writes and 40 % more CPU per byte.
    static let largestNotSentLowWater = 256 * 1024
    /// The kernel's smallest unsent share: one small TLS record.
    static let smallestNotSentLowWater = 4 * 1024
    /// How long of the link the kernel's unsent share covers: enough for the loop to wake and
    /// refill before the link idles, little enough that a keystroke behind it waits no longer.
    static let notSentSpan: Duration = .milliseconds(2)
    /// Shortest span one rate sample covers, so a single write completion's timing is no sample.
    static let sampleSpan: Duration = .milliseconds(10)

    /// At most this many bytes are pulled from the scheduler in one loop turn.
    private(set) var highWater = floor
    /// The kernel's unsent bytes per socket (TCP_NOTSENT_LOWAT); the owner sets it on the socket
    /// whenever it changes.
    private(set) var notSentLowWater = initialNotSentLowWater
    /// Smoothed send rate in bytes per second; nil until the first sample.
    private(set) var bytesPerSecond: Double?
    private var spanStart: Timestamp?
    /// The kernel's running count of bytes taken when the span started.
    private var spanStartTaken = 0
    /// The estimate comes from the connection's own samples (not only the kernel's).
    private var measured = false
    /// When the kernel's path measurements were last read during an application-limited span.
    private var lastPathRead: Timestamp?
    /// The kernel's running count at the last sample point.
    private var lastKernelTaken = 0

    /// The most one socket write hands the kernel: it takes a write whole once its unsent bytes
    /// are below the mark, so this bounds how far past the mark they can go.
    var writeChunk: Int { notSentLowWater }

    /// Each write ends the kernel's segment (MSG_EOR) while the link is slow (the kernel's share
    /// below its initial 16 KiB, so under 8 MB/s): the kernel then checks its low-water mark
    /// before it takes the next write, where it would otherwise append writes to its last
    /// segment, up to 64 KiB with GSO, past the mark (measured on a 20 Mbit/s link: 30–70 KB
    /// unsent with a 5 KB mark, 12–28 ms a keystroke waits). A fast link keeps coalescing writes:
    /// fewer, larger segments.
    var endsEachWrite: Bool { notSentLowWater < Self.initialNotSentLowWater }

    /// Plaintext per TLS record: a quarter of the queue, 4 KiB to TLS's 16 KiB. A record is
    /// decrypted only once it has arrived whole, so on a slow link (a short queue) a keystroke
    /// framed into a record waits for 4 KiB of it, not 16; on a fast one records stay full size.
    var recordSize: Int { min(max(highWater / 4, 4 * 1024), 16 * 1024) }

    /// How a flush ended, as the owner saw it.
    enum FlushEnd: Equatable {
        /// The kernel took every byte it was given.
        case tookAll
        /// The kernel refused bytes (they wait in the socket's write queue). `afterDrain`: the
        /// flush ran because the kernel had just taken all the bytes it refused before.
        case refused(afterDrain: Bool)
    }

    /// A flush ended at `now`, as `end` says, the kernel having taken `kernelTaken` bytes in all so
    /// far. `path`: the kernel's measurements of the path, read at most once a sample span (nil if
    /// they cannot be read; the limit then stays).
    ///
    /// A connection that never fills its queue (a sender on loopback that reads its own input
    /// slower than the kernel drains it) gives no sample of its own, and held at the first
    /// estimate it would write a few KiB per syscall. Until it has one, while it is
    /// application-limited, the kernel's delivery rate can only raise the estimate: it is what the
    /// path carried at the least (the rule BBR applies to application-limited samples). The first
    /// sample of its own replaces it: a delivery rate can read high for a moment (acknowledgements
    /// arriving in a burst), and on a slow link that would size the kernel's share past what a
    /// keystroke can wait behind.
    mutating func flushEnded(_ end: FlushEnd, kernelTaken: Int, at now: Timestamp, path: () -> TCPPath?) {
        let tookMore = kernelTaken != lastKernelTaken
        lastKernelTaken = kernelTaken
        guard case .refused(let afterDrain) = end else {
            spanStart = nil
            // A flush that sent nothing more (one that only read a ping) has no new rate.
            if !measured, tookMore, lastPathRead.map({ now.since($0) >= Self.sampleSpan }) ?? true {
                lastPathRead = now
                if let path = path(), path.deliveryRate > (bytesPerSecond ?? 0) {
                    bytesPerSecond = path.deliveryRate
                    resize(roundTrip: path.roundTrip)
                }
            }
            return
        }
        guard let start = spanStart else {
            spanStart = now
            spanStartTaken = kernelTaken
            return
        }
        let elapsed = now.since(start)
        guard afterDrain, elapsed >= Self.sampleSpan else { return }
        let sample = Double(kernelTaken - spanStartTaken) / Self.seconds(elapsed)
        bytesPerSecond = measured ? bytesPerSecond.map { $0 * 7 / 8 + sample / 8 } : sample
        measured = true
        spanStart = now
        spanStartTaken = kernelTaken
        resize(roundTrip: path()?.roundTrip)
    }

    /// Sizes the kernel's share and the turn's budget from the rate (and the round trip, when known).
    private mutating func resize(roundTrip: Duration?) {
        guard let rate = bytesPerSecond else { return }
        let share = rate * Self.seconds(Self.notSentSpan)
        notSentLowWater = Int(
            min(max(share, Double(Self.smallestNotSentLowWater)), Double(Self.largestNotSentLowWater)))
        if let roundTrip {
            // A turn fills at least the kernel's share and one chunk past it, so a short path
            // (loopback) is not held to a few KiB per turn.
            let bytesInFlight = max(rate * Self.seconds(roundTrip), Double(2 * notSentLowWater))
            highWater = Int(min(max(bytesInFlight, Double(Self.floor)), Double(Self.cap)))
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.wholeNanoseconds) / 1e9
    }
}
