import Synchronization

/// Mutual exclusion across suspension points, granted strictly in arrival order.
///
/// An actor serialises its turns but not its `await`s: a second call may start while the first
/// is suspended on I/O. Holding this lock across such an await makes the whole sequence one
/// step. `unlock()` hands the lock straight to the longest waiter (it never becomes free in
/// between), so a newcomer can never overtake the queue and no waiter starves.
///
/// Waiting for the lock ignores task cancellation: a queued caller is handed the lock and must
/// release it, which keeps the hand-off simple and the order strict. Hold it only around work
/// that ends on its own.
public final class AsyncFIFOLock: Sendable {
    private struct State {
        var isLocked = false
        /// Waiters in arrival order; `head` is the next to be handed the lock. Handed-off
        /// entries are dropped once they are half the array (or the queue drains), so a lock
        /// that is never free for long does not grow without bound.
        var queue: [CheckedContinuation<Void, Never>] = []
        var head = 0

        mutating func popFirst() -> CheckedContinuation<Void, Never>? {
            guard head < queue.count else {
                queue.removeAll(keepingCapacity: true)
                head = 0
                return nil
            }
            let next = queue[head]
            head += 1
            if head >= 64, head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return next
        }
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether some task holds the lock (tests and inspection).
    public var isLocked: Bool { state.withLock { $0.isLocked } }

    /// How many callers wait for the lock (tests and inspection).
    public var queuedCount: Int { state.withLock { $0.queue.count - $0.head } }

    /// Returns once the caller holds the lock; pair every call with one `unlock()`.
    public func lock() async {
        let acquired = state.withLock { state -> Bool in
            guard !state.isLocked else { return false }
            state.isLocked = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // Checked again: the holder may have released between the two critical sections.
            let acquiredNow = state.withLock { state -> Bool in
                guard state.isLocked else {
                    state.isLocked = true
                    return true
                }
                state.queue.append(continuation)
                return false
            }
            if acquiredNow { continuation.resume() }
        }
    }

    /// Releases the lock, handing it to the next waiter if there is one. Calling it without
    /// holding the lock is a programming error and stops the process.
    public func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            precondition(state.isLocked, "AsyncFIFOLock.unlock() called while the lock is free")
            guard let next = state.popFirst() else {
                state.isLocked = false
                return nil
            }
            return next
        }
        next?.resume()
    }

    /// Runs `body` holding the lock, on the caller's actor (so it may touch actor state), and
    /// releases the lock however `body` ends.
    public func withLock<Result, Failure: Error>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws(Failure) -> sending Result
    ) async throws(Failure) -> sending Result {
        await lock()
        defer { unlock() }
        return try await body()
    }
}
