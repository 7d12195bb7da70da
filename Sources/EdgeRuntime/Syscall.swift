#if canImport(Glibc)
public import Glibc
#endif

/// Calls `call` again while it fails with EINTR (returns -1 and sets errno to EINTR): the one
/// EINTR loop for read, write, poll, accept, fsync and friends. The result and errno are those
/// of the last call, so read errno right after it returns.
@inlinable
public func retryingOnInterrupt<R: FixedWidthInteger>(_ call: () -> R) -> R {
    while true {
        let result = call()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}
