import Glibc
import Testing
import TunnelIO

@Suite struct LoopTests {
    @Test func timersFireInDeadlineOrderOnTheLoopClock() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        // The loop clock is cached: refresh it, or the timers would count from
        // whenever the loop last looked at the time.
        let startNanoseconds = EventLoop.monotonicNanoseconds
        loop.updateTime()
        let start = loop.now
        var fired: [(delay: UInt64, at: UInt64)] = []
        let delays: [UInt64] = [30, 10, 20, 0]
        let timers = delays.map { _ in LoopTimer(loop: loop) }
        for (timer, delay) in zip(timers, delays) {
            timer.start(after: delay) {
                fired.append((delay, loop.now))
                timer.close()
                if fired.count == delays.count { harness.finish() }
            }
        }
        harness.run()
        #expect(fired.map(\.delay) == [0, 10, 20, 30])
        for (delay, at) in fired {
            #expect(at >= start + delay, "timer \(delay) fired at +\(at - start) ms")
        }
        // `now` is whole milliseconds truncated from the same clock, hence 29.
        #expect(EventLoop.monotonicNanoseconds - startNanoseconds > 29_000_000)
    }

    @Test func repeatingTimerStopsAndRestarts() throws {
        let harness = try LoopHarness()
        let timer = LoopTimer(loop: harness.loop)
        var ticks = 0
        timer.start(after: 1, repeat: 1) {
            ticks += 1
            guard ticks == 3 else { return }
            timer.stop()
            #expect(!timer.isActive)
            timer.start(after: 1) {
                ticks += 1
                timer.close()
                harness.finish()
            }
        }
        harness.run()
        #expect(ticks == 4)
    }

    @Test func wakerRunsClosuresFromAnotherThreadInOrder() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        let waker = try EventLoop.Waker(loop: loop)
        let seen = LoopBound([Int](), loop: loop)
        let finish = LoopBound(harness.finish, loop: loop)
        let count = 10_000
        let thread = try spawnThread {
            for index in 0..<count {
                waker.execute { seen.value.append(index) }
            }
            waker.execute { finish.value() }
            waker.close()
        }
        harness.run()
        pthread_join(thread, nil)
        #expect(seen.value == Array(0..<count))
        #expect(!waker.execute {}, "a closed waker must refuse work")
    }

    @Test func signalWatcherSeesRaisedHangup() throws {
        let harness = try LoopHarness()
        var received: [Signal] = []
        let watcher = try SignalWatcher(loop: harness.loop, signal: .hangup) { signal in
            received.append(signal)
        }
        // Send to the process rather than raise() to this thread: test runner
        // threads may block SIGHUP, and a thread-directed signal then stays pending.
        let trigger = LoopTimer(loop: harness.loop)
        trigger.start(after: 0) {
            kill(getpid(), SIGHUP)
            trigger.close()
        }
        let poll = LoopTimer(loop: harness.loop)
        poll.start(after: 1, repeat: 1) {
            guard !received.isEmpty else { return }
            poll.close()
            watcher.close()
            harness.finish()
        }
        harness.run()
        #expect(received == [.hangup])
    }

    @Test func closeReportsLeftoverHandles() throws {
        let loop = try EventLoop()
        let timer = LoopTimer(loop: loop)
        #expect(loop.openHandles() == ["timer"])
        #expect(!loop.close())
        timer.close()
        #expect(loop.openHandles() == ["timer (closing)"])
        loop.run()
        #expect(loop.openHandles() == [])
        #expect(loop.close())
    }
}

/// Starts a plain POSIX thread, so the waker is exercised from a thread the
/// loop knows nothing about (not a Swift concurrency executor).
private func spawnThread(_ body: @escaping @Sendable () -> Void) throws -> pthread_t {
    final class Context: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Context(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(
        &thread, nil,
        { context in
            Unmanaged<Context>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
    guard status == 0 else {
        Unmanaged<Context>.fromOpaque(context).release()
        throw ThreadError(status: status)
    }
    return thread
}

private struct ThreadError: Error {
    let status: Int32
}
