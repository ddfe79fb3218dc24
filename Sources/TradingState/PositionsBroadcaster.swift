import MMCore

/// The current positions and everyone waiting for them to change.
///
/// Long-polls park a continuation here and are resumed by the commit that satisfies them
/// (or by their timeout, or by cancellation): nothing polls, so a reader learns of a fill's
/// effect as soon as its transaction commits.
///
/// Not a `ChangeSignal` (AsyncPrimitives), on purpose: each waiter carries a predicate over the
/// published value (a per-symbol reader waits for *its* symbol's version), and `publish` resumes
/// only the waiters it satisfies, handing them the very view that satisfied them. A change signal
/// wakes every waiter on every commit, so each per-symbol reader would wake, re-check and re-park
/// (a new timeout race each time) for every other symbol's fill.
public actor PositionsBroadcaster {
    public private(set) var current: PositionsView

    private struct Waiter {
        let isSatisfied: @Sendable (PositionsView) -> Bool
        let continuation: CheckedContinuation<PositionsView, Never>
        let timer: Task<Void, Never>
    }

    private var waiters: [UInt64: Waiter] = [:]
    private var nextWaiterId: UInt64 = 0
    /// Waiters that have an id but have not parked yet, and those of them already cancelled
    /// (cancellation can race registration).
    private var notYetParked: Set<UInt64> = []
    private var cancelledBeforeParking: Set<UInt64> = []
    private var isShutDown = false

    public init(initial: PositionsView) {
        current = initial
    }

    public var waiterCount: Int { waiters.count }

    /// Publishes a committed view. Older or equal versions are ignored, so commits that
    /// finish out of order can never move readers backwards.
    public func publish(_ view: PositionsView) {
        guard view.version > current.version else { return }
        current = view
        for (id, waiter) in waiters where waiter.isSatisfied(view) {
            waiters.removeValue(forKey: id)
            waiter.timer.cancel()
            waiter.continuation.resume(returning: view)
        }
    }

    /// The current view as soon as `isSatisfied` holds for it, or after `timeoutMs` (then the
    /// current view whatever it is).
    public func wait(timeoutMs: Int64, until isSatisfied: @escaping @Sendable (PositionsView) -> Bool) async -> PositionsView {
        if isSatisfied(current) || timeoutMs <= 0 || isShutDown { return current }
        let id = nextWaiterId
        nextWaiterId += 1
        notYetParked.insert(id)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<PositionsView, Never>) in
                notYetParked.remove(id)
                if cancelledBeforeParking.remove(id) != nil {
                    continuation.resume(returning: current)
                    return
                }
                let timer = Task { [weak self] in
                    try? await Task.sleep(for: .milliseconds(timeoutMs))
                    await self?.release(id)
                }
                waiters[id] = Waiter(isSatisfied: isSatisfied, continuation: continuation, timer: timer)
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
    }

    /// Answers every waiter now (graceful shutdown: nobody should hold the server open).
    public func shutdown() {
        isShutDown = true
        for id in Array(waiters.keys) { release(id) }
    }

    private func cancel(_ id: UInt64) {
        if notYetParked.contains(id) {
            cancelledBeforeParking.insert(id)
        } else {
            release(id)
        }
    }

    private func release(_ id: UInt64) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        waiter.timer.cancel()
        waiter.continuation.resume(returning: current)
    }
}
