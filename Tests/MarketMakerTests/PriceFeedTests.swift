import Logging
import MMCore
import Testing

@testable import MarketMaker

/// The price poll asks only for the symbols assigned to the node, and asks at once when new
/// symbols are assigned: at 1,000 symbols on 20 nodes each poll costs 50 prices, not 1,000.
@Suite struct PriceFeedTests {
    @Test func pollsOnlyTheAssignedSymbolsAndAtOnceOnANewAssignment() async throws {
        let fake = FakeAuthorities(grantTtlMs: 1_000)
        // A long interval: a poll within it can only be the one the new assignment rang for.
        var settings = QuotingEngineTests.settings
        settings.priceIntervalMs = 60_000
        let state = NodeState(settings: settings, time: ManualMonotonicTime(), clock: ManualClock(), logger: Logger(label: "test.prices"))
        for (index, symbol) in ["ACME", "BOLT", "CRUX"].enumerated() { fake.setPrice(symbol, 10_000 + Int64(index), tick: 1) }
        let feed = Task { try await PriceFeed(state: state, source: fake, logger: Logger(label: "test.prices")).run() }
        defer { feed.cancel() }

        fake.assign(["ACME": "n1", "BOLT": "n2", "CRUX": "n1"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        let polled = await waitFor { fake.state.withLock { $0.pricePolls.last } == ["ACME", "CRUX"] }
        #expect(polled, "polls: \(fake.state.withLock { $0.pricePolls })")
        #expect(await state.prices.keys.sorted() == ["ACME", "CRUX"], "only the node's own symbols are fetched")
        #expect(fake.state.withLock { $0.pricePolls.allSatisfy { !$0.contains("BOLT") } })

        fake.assign(["ACME": "n1", "BOLT": "n1", "CRUX": "n1"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        let again = await waitFor { fake.state.withLock { $0.pricePolls.last } == ["ACME", "BOLT", "CRUX"] }
        #expect(again, "a newly assigned symbol is priced at once, not after the 60 s interval")
    }

    func waitFor(_ condition: @Sendable () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}
