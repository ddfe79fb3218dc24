import Logging
import MMCore
import Synchronization
import Testing

@testable import MarketMaker

/// The position long-poll asks only for the node's assigned symbols (so other nodes' fills do
/// not wake it), and is cut and asked again at once when the assignment changes.
@Suite struct PositionFeedTests {
    /// Records every request; long-polls (wait_ms > 0) park until cancelled, like a ledger on
    /// which none of the node's symbols ever changes.
    final class RecordingPositions: PositionSource {
        struct Call: Sendable, Equatable {
            var symbols: [String]?
            var afterVersion: Int64?
            var waitMs: Int64
        }
        let calls = Mutex<[Call]>([])
        let view: PositionsView

        init(_ view: PositionsView) { self.view = view }

        func positions(afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> PositionsView {
            try await answer(Call(symbols: nil, afterVersion: afterVersion, waitMs: waitMs), symbols: view.positions.map(\.symbol))
        }

        func positions(symbols: [String], afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> PositionsView {
            try await answer(Call(symbols: symbols, afterVersion: afterVersion, waitMs: waitMs), symbols: symbols)
        }

        private func answer(_ call: Call, symbols: [String]) async throws(ClientError) -> PositionsView {
            calls.withLock { $0.append(call) }
            if call.waitMs > 0 {
                // Parked until the feed cuts the poll (a 60 s cap keeps a broken test finite).
                try? await Task.sleep(for: .seconds(60))
            }
            let bySymbol = Dictionary(uniqueKeysWithValues: view.positions.map { ($0.symbol, $0) })
            return PositionsView(version: view.version, positions: symbols.map { bySymbol[$0] ?? .flat($0) })
        }
    }

    @Test func pollsOnlyTheAssignedSymbolsAndAgainAtOnceOnANewAssignment() async throws {
        let fake = FakeAuthorities(grantTtlMs: 1_000)
        let state = NodeState(settings: QuotingEngineTests.settings, time: ManualMonotonicTime(), clock: ManualClock(), logger: Logger(label: "test.positions"))
        let source = RecordingPositions(PositionsView(version: 9, positions: [
            Position(symbol: "ACME", netQty: 5, version: 7), Position(symbol: "BOLT", netQty: -2, version: 9), Position(symbol: "CRUX", netQty: 1, version: 3),
        ]))
        fake.assign(["ACME": "n1", "BOLT": "n2", "CRUX": "n1"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        let feed = Task { try await PositionFeed(state: state, source: source, logger: Logger(label: "test.positions")).run() }
        defer { feed.cancel() }

        let parked = await waitFor { source.calls.withLock { $0.last } == RecordingPositions.Call(symbols: ["ACME", "CRUX"], afterVersion: 9, waitMs: QuotingEngineTests.settings.longPollWaitMs) }
        #expect(parked, "calls: \(source.calls.withLock { $0 })")
        let first = source.calls.withLock { $0.first }
        #expect(first == RecordingPositions.Call(symbols: ["ACME", "CRUX"], afterVersion: nil, waitMs: 0), "the first ask is answered at once")
        #expect(await state.positions.keys.sorted() == ["ACME", "CRUX"])
        #expect(await state.positions["ACME"]?.netQty == 5)
        #expect(source.calls.withLock { $0.allSatisfy { $0.symbols != nil && !$0.symbols!.contains("BOLT") } })

        // BOLT moves here: the parked poll (60 s) is cut and BOLT's position fetched at once.
        fake.assign(["ACME": "n1", "BOLT": "n1", "CRUX": "n1"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        let again = await waitFor { source.calls.withLock { $0.contains { $0.symbols == ["ACME", "BOLT", "CRUX"] && $0.waitMs == 0 } } }
        #expect(again, "calls: \(source.calls.withLock { $0 })")
        #expect(await waitFor { await state.positions["BOLT"]?.netQty == -2 })
        let reparked = await waitFor { source.calls.withLock { $0.last } == RecordingPositions.Call(symbols: ["ACME", "BOLT", "CRUX"], afterVersion: 9, waitMs: QuotingEngineTests.settings.longPollWaitMs) }
        #expect(reparked, "after the new set is known, the feed long-polls it")

        // BOLT and CRUX leave: their positions are dropped at once (they would go stale), and
        // the parked poll is not cut for a set that only shrank.
        let before = source.calls.withLock { $0.count }
        fake.assign(["ACME": "n1", "BOLT": "n2", "CRUX": "n2"])
        await state.applyAssignments(try await fake.assignments(afterVersion: nil, waitMs: 0))
        #expect(await state.positions.keys.sorted() == ["ACME"])
        try await Task.sleep(for: .milliseconds(100))
        #expect(source.calls.withLock { $0.count } == before, "calls: \(source.calls.withLock { $0 })")
        #expect(await state.positions.keys.sorted() == ["ACME"])
    }

    func waitFor(_ condition: @Sendable () async -> Bool) async -> Bool {
        for _ in 0..<300 {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }
}
