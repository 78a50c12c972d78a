internal import Glibc

/// A pthread mutex guarding one value. Used instead of `Synchronization.Mutex`
/// because ThreadSanitizer intercepts pthread locks but not the stdlib's
/// futex-based Mutex, which made every waker test report false races.
///
/// `@unchecked Sendable` is sound because `value` is only reached inside
/// `withLock`, between `pthread_mutex_lock` and `pthread_mutex_unlock`.
final class Lock<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&value)
    }
}
