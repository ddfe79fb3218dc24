import Synchronization

/// The waiter set behind a long-poll: "tell me when something changes after what I saw".
///
/// The owner of some state calls `signal()` after every change; a reader that found nothing
/// new reads `version` (its ticket) in the same synchronous step as its check, then awaits
/// `wait(after: ticket, …)`. A change that lands between the check and the park has already
/// moved `version`, so the wait returns at once: no wake-up is lost, whatever the interleaving.
///
/// `close()` is for graceful shutdown: every parked wait returns and every later wait returns
/// at once, so no long-poll holds an HTTP server's drain open for its whole wait.
///
/// A returned wait says only "look again": the caller re-reads its state, because the change
/// may not be the one it wanted, or the wait may have timed out, been cancelled or closed.
public final class ChangeSignal: Sendable {
    private struct State {
        var version: UInt64 = 0
        var isClosed = false
        var nextWaiterID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]

        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
    }

    private let state = Mutex(State())

    public init() {}

    /// Increases by one with every `signal()`; a waiter's ticket.
    public var version: UInt64 { state.withLock { $0.version } }

    /// True once `close()` was called; never false again.
    public var isClosed: Bool { state.withLock { $0.isClosed } }

    /// How many waits are parked right now (tests and inspection).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Records a change and wakes every parked wait.
    public func signal() {
        let woken = state.withLock { state in
            state.version &+= 1
            return state.takeWaiters()
        }
        for continuation in woken { continuation.resume() }
    }

    /// Wakes every parked wait and makes every later one return at once. Idempotent.
    public func close() {
        let woken = state.withLock { state in
            state.isClosed = true
            return state.takeWaiters()
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns at once when `version != seen` or the signal is closed; otherwise when the next
    /// `signal()` or `close()` comes, `timeoutMs` passes (nil: no timeout; ≤ 0: at once) or the
    /// calling task is cancelled, whichever is first.
    public func wait(after seen: UInt64, timeoutMs: Int64?) async {
        guard mustPark(seen) else { return }
        guard let timeoutMs else {
            await park(after: seen)
            return
        }
        guard timeoutMs > 0 else { return }
        _ = await withTimeLimit(.milliseconds(timeoutMs)) { await self.park(after: seen) }
    }

    private func mustPark(_ seen: UInt64) -> Bool {
        state.withLock { !$0.isClosed && $0.version == seen }
    }

    /// Parks until signalled, closed or cancelled. The re-check and the registration are one
    /// critical section, and cancellation is checked inside it too: `Task.isCancelled` is set
    /// before the cancellation handler runs, so either the handler finds the continuation or
    /// the body sees the flag — the continuation is resumed exactly once either way.
    private func park(after seen: UInt64) async {
        let id = state.withLock { state in
            defer { state.nextWaiterID &+= 1 }
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.isClosed || state.version != seen || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
