import MMCore
import Testing
@testable import TradingState

@Suite("Positions broadcaster (long-poll)")
struct BroadcasterTests {
    static func view(_ version: Int64) -> PositionsView { PositionsView(version: version, positions: [Position(symbol: "ACME", version: version)]) }

    /// Runs `body` but fails the test instead of hanging when it does not finish in time.
    static func finishes<T: Sendable>(within seconds: Int, _ body: @escaping @Sendable () async -> T) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    @Test("a waiter is woken by the publish that satisfies it, not by its (long) timeout")
    func wakesOnPublish() async throws {
        let broadcaster = PositionsBroadcaster(initial: Self.view(3))
        let waiter = Task { await broadcaster.wait(timeoutMs: 120_000) { $0.version > 3 } }
        let parked = await eventuallyTrue { await broadcaster.waiterCount == 1 }
        #expect(parked)
        await broadcaster.publish(Self.view(4))
        let result = await Self.finishes(within: 10) { await waiter.value }
        #expect(result?.version == 4)
        #expect(await broadcaster.waiterCount == 0)
    }

    @Test("an unsatisfying publish leaves the waiter parked")
    func predicateIsRespected() async throws {
        let broadcaster = PositionsBroadcaster(initial: Self.view(3))
        let waiter = Task { await broadcaster.wait(timeoutMs: 120_000) { $0.version > 5 } }
        #expect(await eventuallyTrue { await broadcaster.waiterCount == 1 })
        await broadcaster.publish(Self.view(4))
        #expect(await broadcaster.waiterCount == 1)
        await broadcaster.publish(Self.view(6))
        #expect(await Self.finishes(within: 10) { await waiter.value }?.version == 6)
    }

    @Test("already satisfied or zero wait answers at once; the timeout answers with the current view")
    func immediateAndTimeout() async {
        let broadcaster = PositionsBroadcaster(initial: Self.view(3))
        #expect(await broadcaster.wait(timeoutMs: 60_000) { $0.version > 2 }.version == 3)
        #expect(await broadcaster.wait(timeoutMs: 0) { $0.version > 3 }.version == 3)
        #expect(await broadcaster.wait(timeoutMs: 30) { $0.version > 3 }.version == 3)
        #expect(await broadcaster.waiterCount == 0)
    }

    @Test("older versions are never published over newer ones")
    func neverBackwards() async {
        let broadcaster = PositionsBroadcaster(initial: Self.view(3))
        await broadcaster.publish(Self.view(7))
        await broadcaster.publish(Self.view(5))
        #expect(await broadcaster.current.version == 7)
    }

    @Test("cancelling a waiting task releases it; shutdown releases everyone")
    func cancellationAndShutdown() async {
        let broadcaster = PositionsBroadcaster(initial: Self.view(1))
        let cancelled = Task { await broadcaster.wait(timeoutMs: 120_000) { $0.version > 1 } }
        let other = Task { await broadcaster.wait(timeoutMs: 120_000) { $0.version > 1 } }
        #expect(await eventuallyTrue { await broadcaster.waiterCount == 2 })
        cancelled.cancel()
        #expect(await Self.finishes(within: 10) { await cancelled.value }?.version == 1)
        await broadcaster.shutdown()
        #expect(await Self.finishes(within: 10) { await other.value }?.version == 1)
        #expect(await broadcaster.waiterCount == 0)
    }
}

/// Polls a condition for up to 10 s (test set-up only, never a timing assertion).
func eventuallyTrue(_ condition: @Sendable () async -> Bool) async -> Bool {
    for _ in 0..<1_000 {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}
