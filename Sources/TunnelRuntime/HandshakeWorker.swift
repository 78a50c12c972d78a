import Glibc
import Multiplex
import TunnelIO
import TunnelTLS

/// Runs the costly steps of server TLS handshakes (the key exchange and signature, the checks of
/// the client's certificate: `SSL_do_handshake`) on threads of their own, so that a reconnect
/// storm uses more than the loop's one core. The loop decides (admission, holds at the
/// ClientHello) and owns everything else; a worker thread only advances a handshake the loop
/// handed over, and hands it back through the loop's `Waker`.
///
/// While a handshake is away its owner (`MuxConnection`) does not touch the `TLSConnection`: it
/// has stopped reading its socket and writes nothing. The loop keeps the strong references of
/// every handshake away (`away`), so each `TLSConnection` and completion is released on the
/// loop, never on a worker thread.
///
/// Loop-confined: create it, hand handshakes to it and close it on the loop's thread.
public final class HandshakeWorker {
    public let threadCount: Int
    private let shared: Shared
    private let waker: EventLoop.Waker
    private let away: LoopBound<HandshakesAway>
    private var threads: [pthread_t] = []
    private var nextTicket: UInt64 = 0
    private var isClosed = false

    /// Why the worker could not start: the loop's waker or a thread.
    public struct StartFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `threads` worker threads (at least one).
    public init(loop: EventLoop, threads: Int) throws(StartFailure) {
        threadCount = max(1, threads)
        do { waker = try EventLoop.Waker(loop: loop) } catch { throw StartFailure(description: "\(error)") }
        away = LoopBound(HandshakesAway(), loop: loop)
        shared = Shared(waker: waker, away: away)
        for _ in 0..<threadCount {
            var thread = pthread_t()
            let argument = Unmanaged.passRetained(shared).toOpaque()
            let status = pthread_create(
                &thread, nil,
                { argument in
                    let shared = Unmanaged<Shared>.fromOpaque(argument!).takeRetainedValue()
                    nameThisThread("tls-handshake")
                    shared.work()
                    return nil
                }, argument)
            guard status == 0 else {
                Unmanaged<Shared>.fromOpaque(argument).release()
                close()
                throw StartFailure(description: "cannot start a thread: \(String(cString: strerror(status)))")
            }
            self.threads.append(thread)
        }
    }

    deinit { close() }

    /// Handshakes with a worker now, and steps that came back so far (for tests and metrics).
    public var handshakesAway: Int { away.value.entries.count }
    public var stepsBack: Int { away.value.stepsBack }

    /// Runs `tls`'s next handshake step on a worker thread, then `completion` on the loop. Until
    /// then the caller must not touch `tls`. A handshake handed over after `close` never comes
    /// back.
    public func advance(_ tls: TLSConnection, then completion: @escaping () -> Void) {
        guard !isClosed else { return }
        nextTicket += 1
        away.value.entries[nextTicket] = (tls, completion)
        shared.submit(ticket: nextTicket, tls: Unmanaged.passUnretained(tls).toOpaque())
    }

    /// Stops the threads once their current step is done (the loop waits for that, about a
    /// millisecond) and drops the handshakes still away: their completions never run.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        shared.stop()
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
        away.value.entries.removeAll()
        waker.close()
    }
}

/// Names the calling thread for `top -H`, perf and /proc/PID/task/*/comm (Glibc's module does
/// not show `pthread_setname_np`). Best effort.
private func nameThisThread(_ name: String) {
    let file = open("/proc/thread-self/comm", O_WRONLY)
    guard file >= 0 else { return }
    _ = Array(name.utf8).withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
    Glibc.close(file)
}

/// Handshakes with a worker, by ticket: what the loop holds while they are away.
private final class HandshakesAway {
    var entries: [UInt64: (tls: TLSConnection, completion: () -> Void)] = [:]
    var stepsBack = 0

    func cameBack(_ ticket: UInt64) {
        stepsBack += 1
        entries.removeValue(forKey: ticket)?.completion()
    }
}

/// The queue between the loop and the worker threads.
///
/// `@unchecked Sendable`: `queue` and `stopping` are only touched with `mutex` held. The raw
/// pointers in the queue are `TLSConnection`s the loop keeps alive in `HandshakeWorker.away`
/// until their completion runs, which is queued only after the worker's step; the loop does not
/// touch one while it is away, and the mutex (on the way out) and the waker's lock (on the way
/// back) order the loop's accesses before and after the worker's.
private final class Shared: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue = FIFO<(ticket: UInt64, tls: UnsafeMutableRawPointer)>()
    private var stopping = false
    private let waker: EventLoop.Waker
    private let away: LoopBound<HandshakesAway>

    init(waker: EventLoop.Waker, away: LoopBound<HandshakesAway>) {
        self.waker = waker
        self.away = away
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func submit(ticket: UInt64, tls: UnsafeMutableRawPointer) {
        pthread_mutex_lock(mutex)
        queue.append((ticket, tls))
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// A worker thread's life: take a handshake, advance it, hand it back, until `stop`.
    func work() {
        while let (ticket, tls) = next() {
            Self.advance(tls)
            let away = self.away
            waker.execute { away.value.cameBack(ticket) }
        }
    }

    /// The next handshake to advance; nil once stopping.
    private func next() -> (UInt64, UnsafeMutableRawPointer)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while queue.isEmpty, !stopping { pthread_cond_wait(condition, mutex) }
        guard !stopping, let entry = queue.popFirst() else { return nil }
        return entry
    }

    /// In a function of its own so the reference taken here is released before the handshake
    /// is handed back: the loop's reference is then always the last.
    @inline(never)
    private static func advance(_ pointer: UnsafeMutableRawPointer) {
        Unmanaged<TLSConnection>.fromOpaque(pointer).takeUnretainedValue().advanceHandshake()
    }
}
