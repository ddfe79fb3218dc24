import Synchronization

/// Wakes one waiting loop: `ring()` from anywhere, `wait(timeout:)` in the loop. Rings while
/// nobody waits are remembered (once), so a change that lands between two waits is never lost.
/// Idle loops sleep here instead of polling, which is what keeps an idle node near 0% CPU.
///
/// Not a `ChangeSignal` (AsyncPrimitives): this is a one-waiter binary semaphore that remembers
/// a ring until the next wait, so the loops need no ticket — a ring that lands while a loop is
/// busy is the memory. A change signal is a broadcast that is lossless only if each loop reads a
/// ticket before it plans; every loop that waits here (engine, acquirer, presence) would change
/// shape for the same behaviour.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung, when `timeout` passes (nil: no timeout) or when the task is cancelled.
    /// Only one task may wait at a time.
    public func wait(timeout: Duration?) async {
        if consumeRing() { return }
        guard let timeout else {
            await waitForRing()
            return
        }
        guard timeout > .zero else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForRing() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func consumeRing() -> Bool {
        state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
