import Logging
import TunnelIO

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM and SIGINT handling for a long-running command: the first signal calls `onStop`
/// (drain, close); a second one exits at once (an operator who presses Ctrl-C twice means it).
/// Close it when the command's work is done, so the loop can run out of handles and return.
package final class StopSignals {
    private var watchers: [SignalWatcher] = []
    private var stopping = false

    package init(loop: EventLoop, logger: Logger, onStop: @escaping () -> Void) {
        for signal in [Signal.terminate, Signal.interrupt] {
            if let watcher = try? SignalWatcher(
                loop: loop, signal: signal,
                { [unowned self] signal in
                    if stopping {
                        logger.warning("second signal; exiting without draining")
                        exit(1) // a failure's exit code, as every command's (CommandFailure)
                    }
                    stopping = true
                    logger.info("signal received; stopping", metadata: ["signal": "\(signal.number)"])
                    onStop()
                })
            {
                watchers.append(watcher)
            }
        }
    }

    package func close() {
        for watcher in watchers { watcher.close() }
        watchers.removeAll()
    }
}
