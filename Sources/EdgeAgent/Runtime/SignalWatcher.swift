#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime

/// Turns SIGTERM, SIGINT and SIGHUP into calls on a dedicated thread (sigwait), so the agent's
/// shutdown and reload run as ordinary code, never inside a signal handler.
///
/// `install()` must be called before any other thread starts: it blocks these signals for the
/// whole process, and threads inherit the mask.
public enum SignalWatcher {
    public enum Event: Sendable { case terminate(Int32), reload }

    /// Blocks the signals in the calling thread (and every thread started after it).
    public static func install() {
        var set = watched()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// SIGTERM, SIGINT, SIGHUP.
    private static func watched() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Waits for the signals on the calling thread, delivering each to `handler`, until the
    /// handler returns false (the main thread of `edge-agent` after start). With `settle`,
    /// `settled` runs once `settle` after the call and again `settle` after each reload, on the
    /// same thread, when no signal is being handled.
    public static func run(settle: Duration? = nil, settled: () -> Void = {}, _ handler: (Event) -> Bool) {
        var set = watched()
        var settleAt = settle.map { MonotonicInstant.now() + $0 }
        while true {
            var sig: Int32 = 0
            if let at = settleAt {
                let left = max(Int64(0), at.nanoseconds - MonotonicInstant.now().nanoseconds)
                var timeout = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
                let got = sigtimedwait(&set, nil, &timeout)
                if got < 0 {
                    if errno == EAGAIN {
                        settleAt = nil
                        settled()
                    }
                    continue
                }
                sig = got
            } else if sigwait(&set, &sig) != 0 {
                continue
            }
            let event: Event = sig == SIGHUP ? .reload : .terminate(sig)
            if !handler(event) { return }
            if case .reload = event, let settle { settleAt = MonotonicInstant.now() + settle }
        }
    }

    /// Starts the watcher thread delivering each signal to `handler`.
    public static func start(_ handler: @escaping @Sendable (Event) -> Void) {
        OSThread.detached(name: "signals") {
            run { event in
                handler(event)
                return true
            }
        }
    }
}
