import CSystemShims
#if canImport(Glibc)
public import Glibc
#endif

/// A named OS thread (pthread): the one way the project starts a thread. Loops, buses, GPIO
/// event readers, servers and the uplink each run on one, so `top -H` and the benchmarks list
/// them by name; none runs on Swift's cooperative pool.
///
/// `start` returns a joinable handle; `detached` starts one nobody joins. Names are cut to
/// Linux's 15 bytes.
public struct OSThread: Sendable {
    /// The pthread handle (an integer on Linux).
    public let handle: pthread_t

    /// How the thread is scheduled, as `startRealtime` found it.
    public enum Scheduling: Sendable, Equatable {
        /// Normal scheduling (no priority was asked for).
        case normal
        /// SCHED_FIFO at the priority asked for.
        case realtime(priority: Int32)
        /// SCHED_FIFO was refused (EPERM without CAP_SYS_NICE / LimitRTPRIO): normal scheduling.
        case refused(priority: Int32, errno: Int32)
    }

    /// Starts a joinable thread named `name` running `body`.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> OSThread {
        OSThread(handle: spawn(name: name, priority: 0) { _ in body() })
    }

    /// Starts a joinable thread named `name` that asks for SCHED_FIFO at `priority` (1-99; 0 =
    /// normal scheduling) before running `body`, which is told what it got.
    public static func startRealtime(name: String, priority: Int32, _ body: @escaping @Sendable (_ scheduling: Scheduling) -> Void) -> OSThread {
        OSThread(handle: spawn(name: name, priority: priority, body))
    }

    /// Starts a thread named `name` running `body` that nobody joins (it frees itself on exit).
    public static func detached(name: String, _ body: @escaping @Sendable () -> Void) {
        let tid = spawn(name: name, priority: 0) { _ in body() }
        _ = pthread_detach(tid)
    }

    /// True on the thread itself.
    public var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }

    /// Waits for the thread to end (pthread_join). On the thread itself (a handler that stops its
    /// own thread) it only detaches: the thread ends by itself once its body returns.
    public func join() {
        if isCurrent {
            _ = pthread_detach(handle)
        } else {
            let rc = pthread_join(handle, nil)
            precondition(rc == 0, "pthread_join failed: errno \(rc)")
        }
    }

    /// Lets the thread end by itself without being joined (pthread_detach).
    public func detach() {
        _ = pthread_detach(handle)
    }

    private final class Start: Sendable {
        let name: String
        let priority: Int32
        let body: @Sendable (Scheduling) -> Void
        init(name: String, priority: Int32, body: @escaping @Sendable (Scheduling) -> Void) {
            self.name = name
            self.priority = priority
            self.body = body
        }
    }

    private static func spawn(name: String, priority: Int32, _ body: @escaping @Sendable (Scheduling) -> Void) -> pthread_t {
        let start = Unmanaged.passRetained(Start(name: name, priority: priority, body: body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            _ = edge_set_thread_name(start.name)
            var scheduling = Scheduling.normal
            if start.priority > 0 {
                var param = sched_param()
                param.sched_priority = start.priority
                let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
                scheduling = rc == 0 ? .realtime(priority: start.priority) : .refused(priority: start.priority, errno: rc)
            }
            start.body(scheduling)
            return nil
        }, start)
        precondition(rc == 0, "pthread_create failed for thread \(name): errno \(rc)")
        return tid
    }
}
