import AsyncPrimitives
import Testing

/// Runs `body` and reports whether it finished within `limit`. A body that does not finish
/// in time is cancelled (every primitive here honours cancellation), so a test that would
/// otherwise hang fails instead.
func finishes(within limit: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    await withTimeLimit(limit, body) != nil
}

/// Polls `condition` every millisecond until it holds or `limit` passes.
func eventually(within limit: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}
