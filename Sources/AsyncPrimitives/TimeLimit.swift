/// Runs `operation` and returns its result, or cancels it once `limit` has passed and returns
/// nil. Cancellation is cooperative: the call returns when the operation has ended, so it
/// bounds only operations that honour cancellation (AsyncHTTPClient requests and `Task.sleep`
/// do). The limit is a sibling task, so nothing outlives the call.
public func withTimeLimit<Value: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async -> Value
) async -> Value? {
    await withTaskGroup(of: Value?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        // The first to finish decides: the operation's value, or nil when the limit came first.
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
