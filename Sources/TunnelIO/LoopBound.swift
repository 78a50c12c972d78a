internal import Glibc

/// Carries a loop-confined value through `Waker.execute` closures, which must
/// be `@Sendable`. Reading or writing `value` off the loop thread traps.
///
/// `@unchecked Sendable` is sound because every access to the boxed value is
/// checked to happen on the one thread that owns the loop.
public struct LoopBound<Value>: @unchecked Sendable {
    private final class Box {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    private let box: Box
    private let thread: pthread_t

    /// Call on the loop thread.
    public init(_ value: Value, loop: EventLoop) {
        precondition(loop.isInLoopThread, "LoopBound must be created on the loop thread")
        self.box = Box(value)
        self.thread = loop.thread
    }

    public var value: Value {
        get {
            precondition(pthread_equal(thread, pthread_self()) != 0, "LoopBound read off the loop thread")
            return box.value
        }
        nonmutating set {
            precondition(pthread_equal(thread, pthread_self()) != 0, "LoopBound written off the loop thread")
            box.value = newValue
        }
    }
}
