import Foundation
import TunnelIO

/// One event loop on a thread of its own, with the virtual nodes and operators that live on it.
///
/// `@unchecked Sendable` is sound because the loop-confined fields (`context`, `nodes`,
/// `operators`, `enroller`, `signals`) are created and used only on the worker's thread, inside
/// closures queued through `waker` (itself thread-safe); other threads touch only `waker`.
final class LoopWorker: @unchecked Sendable {
    private var waker: EventLoop.Waker!
    private(set) var context: LoopContext!
    var nodes: [Int: VirtualNode] = [:]
    var operators: [VirtualOperator] = []
    var enroller: Enroller?
    var signals: [SignalWatcher] = []
    private let finished = DispatchSemaphore(value: 0)

    init(target: Target, stats: FleetStats) {
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            do {
                let loop = try EventLoop()
                context = LoopContext(loop: loop, target: target, stats: stats)
                waker = try EventLoop.Waker(loop: loop)
            } catch {
                fatalError("cannot start an event loop: \(error)")
            }
            ready.signal()
            context.loop.run()
            finished.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        ready.wait()
    }

    /// Runs `body` on the worker's loop thread.
    func run(_ body: @escaping @Sendable (LoopWorker) -> Void) {
        waker.execute { [self] in body(self) }
    }

    /// Stops every node and operator (each says goodbye with a GOAWAY) and lets the loop end,
    /// waiting at most `seconds` for its connections to close.
    func shutdown(seconds: Double) {
        run { worker in
            worker.nodes.values.forEach { $0.stop() }
            worker.operators.forEach { $0.stop() }
            worker.signals.forEach { $0.close() }
            worker.waker.close()
        }
        _ = finished.wait(timeout: .now() + seconds)
    }
}

/// A flag the signal handlers set and the main thread reads.
///
/// `@unchecked Sendable` is sound because `requested` is reached only under `lock`.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    var isSet: Bool { lock.withLock { requested } }
    func set() { lock.withLock { requested = true } }
}

/// Lifts the open-file limit to its hard maximum: each node holds a socket.
func raiseOpenFileLimit(needed: Int) {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if Int(limit.rlim_cur) < needed {
        say("warning: the open-file limit is \(limit.rlim_cur), below the \(needed) this run needs (ulimit -Hn)")
    }
}
