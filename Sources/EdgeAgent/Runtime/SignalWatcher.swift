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
    /// handler returns false (the main thread of `edge-agent` after start).
    public static func run(_ handler: (Event) -> Bool) {
        var set = watched()
        while true {
            var sig: Int32 = 0
            if sigwait(&set, &sig) != 0 { continue }
            if !handler(sig == SIGHUP ? .reload : .terminate(sig)) { return }
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
