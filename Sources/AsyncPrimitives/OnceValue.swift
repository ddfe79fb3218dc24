import Synchronization

/// A value decided once and awaited by any number of tasks: the first `resolve` wins, later
/// ones are ignored, and `value()` returns at once after the decision or parks until it.
/// (The supervisor's reap result and a child's first-start outcome are both this.)
public final class OnceValue<Value: Sendable>: Sendable {
    private enum State {
        case pending([CheckedContinuation<Value, Never>])
        case decided(Value)
    }

    private let state = Mutex(State.pending([]))

    public init() {}

    /// True if this call decided the value.
    @discardableResult
    public func resolve(_ value: Value) -> Bool {
        let waiting: [CheckedContinuation<Value, Never>]? = state.withLock { state in
            guard case .pending(let continuations) = state else { return nil }
            state = .decided(value)
            return continuations
        }
        guard let waiting else { return false }
        for continuation in waiting { continuation.resume(returning: value) }
        return true
    }

    /// The decided value, if any, without waiting.
    public var decided: Value? {
        state.withLock { state in
            if case .decided(let value) = state { return value }
            return nil
        }
    }

    public func value() async -> Value {
        await withCheckedContinuation { continuation in
            let decided: Value? = state.withLock { state in
                switch state {
                case .decided(let value): return value
                case .pending(var continuations):
                    continuations.append(continuation)
                    state = .pending(continuations)
                    return nil
                }
            }
            if let decided { continuation.resume(returning: decided) }
        }
    }
}
