import Testing
import TunnelIO

/// Runs one test scenario on a fresh loop, bounded by a watchdog timer on that
/// loop: if the scenario has not called `finish()` in time, the watchdog records
/// a failure and stops the loop. Either way the loop must end with every
/// handle closed and `uv_loop_close` succeeding.
final class LoopHarness {
    let loop: EventLoop
    private let watchdog: LoopTimer
    private let timeoutMilliseconds: UInt64
    private let sourceLocation: SourceLocation
    private var finished = false

    init(timeoutMilliseconds: UInt64 = 10_000, sourceLocation: SourceLocation = #_sourceLocation) throws {
        loop = try EventLoop()
        watchdog = LoopTimer(loop: loop)
        self.timeoutMilliseconds = timeoutMilliseconds
        self.sourceLocation = sourceLocation
    }

    /// The scenario is complete: release the watchdog so the loop can drain.
    func finish() {
        finished = true
        watchdog.close()
    }

    /// Runs the loop until every handle has closed, then closes the loop.
    func run() {
        if !finished {
            // Armed only now, on a fresh clock, so slow setup (sanitizers, debug
            // builds) does not eat into the scenario's time.
            loop.updateTime()
            watchdog.start(after: timeoutMilliseconds) { [loop, timeoutMilliseconds, sourceLocation] in
                Issue.record("scenario timed out after \(timeoutMilliseconds) ms", sourceLocation: sourceLocation)
                loop.stop()
            }
        }
        loop.run()
        #expect(loop.openHandles() == [], "handles left open", sourceLocation: sourceLocation)
        #expect(loop.close(), "uv_loop_close failed", sourceLocation: sourceLocation)
    }
}

/// 64-bit FNV-1a, fed incrementally, to compare byte streams without keeping them.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64, eight bytes per step), so
/// failures reproduce and large payloads stay cheap to make in debug builds.
func patternBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var index = 0
        while index < count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            withUnsafeBytes(of: state.littleEndian) { word in
                for byte in word where index < count {
                    buffer[index] = byte
                    index += 1
                }
            }
        }
        initialized = count
    }
}
