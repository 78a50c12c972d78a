// Pushes bytes through two Multiplex sessions wired back to back in memory and prints GiB/s and
// heap allocations per MiB for 1, 16 and 256 concurrent streams, next to a plain memory-copy
// loop over the same bytes measured in the same run.
//   TUNNEL_UNCHECKED_EXCLUSIVITY=1 swift run -c release --package-path Benchmarks multiplex-bench [GiB per case, default 1] [repeats, default 3] [stream counts, default 1,16,256]
import CAllocationCounter
import Glibc
import Multiplex

func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

struct Measurement {
    var seconds: Double
    var allocations: UInt64
    var bytes: Int

    var gibPerSecond: Double { Double(bytes) / seconds / Double(1 << 30) }
    var allocationsPerMiB: Double { Double(allocations) / (Double(bytes) / Double(1 << 20)) }
}

func measure(bytes: Int, _ body: () -> Void) -> Measurement {
    let allocationsBefore = tunnel_allocation_count()
    let start = monotonicNanoseconds()
    body()
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    return Measurement(seconds: seconds, allocations: tunnel_allocation_count() - allocationsBefore, bytes: bytes)
}

let chunk = [UInt8](repeating: 0xA5, count: 64 * 1024)

/// The peer: copies 64 KiB chunks into a reused destination, as a transport's write path would.
func copyLoop(total: Int) -> Measurement {
    var destination = [UInt8](repeating: 0, count: 256 * 1024)
    var checksum: UInt8 = 0
    let result = measure(bytes: total) {
        var moved = 0
        var offset = 0
        destination.withUnsafeMutableBytes { target in
            chunk.withUnsafeBytes { source in
                while moved < total {
                    memcpy(target.baseAddress! + offset, source.baseAddress!, source.count)
                    offset = (offset + source.count) % target.count
                    moved += source.count
                }
            }
            checksum = target[offset]
        }
    }
    precondition(checksum == 0xA5)
    return result
}

/// `total` bytes split over `streamCount` streams from dialer to acceptor; the acceptor's
/// application consumes every byte as soon as it arrives.
func sessions(total: Int, streamCount: Int) -> Measurement {
    let now = Timestamp(nanoseconds: monotonicNanoseconds())
    var configuration = SessionConfiguration()
    configuration.maxConcurrentStreams = UInt32(max(streamCount, 100))
    let sender = Session(role: .dialer, configuration: configuration, now: now)
    let receiver = Session(role: .acceptor, configuration: configuration, now: now)
    var ids: [StreamID] = []
    for _ in 0..<streamCount { ids.append(try! sender.openStream(metadata: [])) }
    var wire: [UInt8] = []
    wire.reserveCapacity(512 * 1024)
    var replies: [UInt8] = []
    replies.reserveCapacity(64 * 1024)
    let perStream = total / streamCount
    var remaining = [Int](repeating: perStream, count: streamCount)
    /// Streams whose application may write: all at first, then those the session calls writable.
    var writable = Array(0..<streamCount)
    var received = 0
    let result = measure(bytes: perStream * streamCount) {
        var round = 0
        while received < perStream * streamCount {
            round += 1
            if round % 64 == 0 {
                let time = Timestamp(nanoseconds: monotonicNanoseconds())
                sender.advanceTime(to: time)
                receiver.advanceTime(to: time)
            }
            for index in writable {
                var keepWriting = true
                while keepWriting && remaining[index] > 0 {
                    let size = min(chunk.count, remaining[index])
                    keepWriting = try! sender.write(chunk[0..<size], on: ids[index])
                    remaining[index] -= size
                    if remaining[index] == 0 { try! sender.finish(ids[index]) }
                }
            }
            writable.removeAll(keepingCapacity: true)
            wire.removeAll(keepingCapacity: true)
            sender.pollTransmit(into: &wire, maxBytes: 64 * 1024)
            receiver.receive(wire[...], now: Timestamp(nanoseconds: 0))
            while let event = receiver.pollEvent() {
                switch event {
                case .streamOpened(let id, _, _):
                    try! receiver.accept(id)
                case .data(let id, let bytes):
                    received += bytes.count
                    receiver.consumed(bytes.count, on: id)
                default:
                    break
                }
            }
            replies.removeAll(keepingCapacity: true)
            receiver.pollTransmit(into: &replies)
            sender.receive(replies[...], now: Timestamp(nanoseconds: 0))
            while let event = sender.pollEvent() {
                if case .writable(let id) = event { writable.append(Int(id - 1) / 2) }
            }
        }
    }
    return result
}

func median(_ values: [Measurement]) -> Measurement {
    values.sorted { $0.seconds < $1.seconds }[values.count / 2]
}

let arguments = CommandLine.arguments
let gib = arguments.count > 1 ? Double(arguments[1]) ?? 1 : 1
let repeats = arguments.count > 2 ? Int(arguments[2]) ?? 3 : 3
let streamCounts = arguments.count > 3 ? arguments[3].split(separator: ",").compactMap { Int($0) } : [1, 16, 256]
let total = Int(gib * Double(1 << 30)) / chunk.count * chunk.count

print("Multiplex in memory: \(gib) GiB per case, median of \(repeats) runs")
print("case                     GiB/s   allocs/MiB   vs memcpy")
let copy = median((0..<repeats).map { _ in copyLoop(total: total) })
/// `value` with two decimals, right-aligned in `width` columns (no Foundation here).
func column(_ value: Double, width: Int) -> String {
    let hundredths = Int((value * 100).rounded())
    let text = "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

func row(_ name: String, _ measurement: Measurement) {
    let ratio = measurement.gibPerSecond / copy.gibPerSecond
    print(
        name + String(repeating: " ", count: max(0, 22 - name.count))
            + column(measurement.gibPerSecond, width: 7) + column(measurement.allocationsPerMiB, width: 13)
            + column(ratio, width: 11))
}
row("memcpy loop", copy)
for streamCount in streamCounts {
    row(
        "sessions, \(streamCount) stream\(streamCount == 1 ? "" : "s")",
        median((0..<repeats).map { _ in sessions(total: total, streamCount: streamCount) }))
}
