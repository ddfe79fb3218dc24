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
///
/// Readers with a `PositionsInterest` (the positions routes) are matched against what each
/// commit changed (`PositionIndex.apply`), not against the whole view, and are answered only
/// their own symbols: a node holding 50 of 1,000 symbols is woken by its fills alone.
public actor PositionsBroadcaster {
    public private(set) var current: PositionsView
    public private(set) var index: PositionIndex

    private enum Condition {
        case predicate(@Sendable (PositionsView) -> Bool)
        case interest(PositionsInterest)
    }

    private struct Waiter {
        let condition: Condition
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
        index = PositionIndex(initial)
    }

    public var waiterCount: Int { waiters.count }

    /// Publishes a committed view. Older or equal versions are ignored, so commits that
    /// finish out of order can never move readers backwards.
    public func publish(_ view: PositionsView) {
        guard view.version > current.version else { return }
        current = view
        let changes = index.apply(view)
        for (id, waiter) in waiters {
            let woken: Bool
            switch waiter.condition {
            case .predicate(let isSatisfied): woken = isSatisfied(view)
            case .interest(let interest): woken = interest.isWoken(by: changes)
            }
            guard woken else { continue }
            waiters.removeValue(forKey: id)
            waiter.timer.cancel()
            waiter.continuation.resume(returning: answer(waiter.condition))
        }
    }

    /// The current answer for `interest` (its symbols only when filtered).
    public func view(for interest: PositionsInterest) -> PositionsView {
        interest.answer(from: index, full: current)
    }

    /// The answer for `interest` as soon as one of its positions (unfiltered: the ledger) is
    /// newer than `interest.afterVersion`, or after `timeoutMs` whatever it is.
    public func wait(timeoutMs: Int64, for interest: PositionsInterest) async -> PositionsView {
        if interest.isSatisfied(by: index) || timeoutMs <= 0 || isShutDown { return view(for: interest) }
        return await park(timeoutMs: timeoutMs, .interest(interest))
    }

    private func answer(_ condition: Condition) -> PositionsView {
        switch condition {
        case .predicate: current
        case .interest(let interest): view(for: interest)
        }
    }

    /// The current view as soon as `isSatisfied` holds for it, or after `timeoutMs` (then the
    /// current view whatever it is).
    public func wait(timeoutMs: Int64, until isSatisfied: @escaping @Sendable (PositionsView) -> Bool) async -> PositionsView {
        if isSatisfied(current) || timeoutMs <= 0 || isShutDown { return current }
        return await park(timeoutMs: timeoutMs, .predicate(isSatisfied))
    }

    private func park(timeoutMs: Int64, _ condition: Condition) async -> PositionsView {
        let id = nextWaiterId
        nextWaiterId += 1
        notYetParked.insert(id)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<PositionsView, Never>) in
                notYetParked.remove(id)
                if cancelledBeforeParking.remove(id) != nil {
                    continuation.resume(returning: answer(condition))
                    return
                }
                let timer = Task { [weak self] in
                    try? await Task.sleep(for: .milliseconds(timeoutMs))
                    await self?.release(id)
                }
                waiters[id] = Waiter(condition: condition, continuation: continuation, timer: timer)
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
        waiter.continuation.resume(returning: answer(waiter.condition))
    }
}
