import Foundation
import MMCore
import PropertyBased
import Testing
@testable import OperatorGUI

@Suite struct QuoteUpdateLogTests {
    static func view(_ quotes: [String: ClusterSnapshot.QuoteView?], at: EpochMs = Fixtures.t0) -> ClusterSnapshot {
        var snapshot = Fixtures.snapshot(takenAt: at)
        snapshot.symbols = quotes.keys.sorted().map { symbol in
            ClusterSnapshot.SymbolView(symbol: symbol, tickSize: "0.01", referencePrice: 100, assignedTo: nil, authority: nil, quote: quotes[symbol] ?? nil, position: nil)
        }
        return snapshot
    }

    static let a = Fixtures.quote("n1", token: 1, bid: 99, ask: 101, at: 1)
    static let aRefreshed = Fixtures.quote("n1", token: 1, bid: 99, ask: 101, at: 2)
    static let aRepriced = Fixtures.quote("n1", token: 1, bid: 98, ask: 101, at: 3)
    static let aNewOwner = Fixtures.quote("n2", token: 2, bid: 99, ask: 101, at: 4)

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var before: ClusterSnapshot.QuoteView??
        var after: ClusterSnapshot.QuoteView?
        var expected: QuoteUpdate.Change?
        var testDescription: String { name }
    }

    @Test(arguments: [
        Case(name: "first sight of a resting quote", before: .none, after: a, expected: .current),
        Case(name: "first sight, nothing resting", before: .none, after: nil, expected: nil),
        Case(name: "placed", before: .some(nil), after: a, expected: .placed),
        Case(name: "withdrawn", before: .some(a), after: nil, expected: .withdrawn),
        Case(name: "unchanged", before: .some(a), after: a, expected: nil),
        Case(name: "still nothing", before: .some(nil), after: nil, expected: nil),
        Case(name: "same prices re-sent", before: .some(a), after: aRefreshed, expected: .refreshed),
        Case(name: "repriced", before: .some(a), after: aRepriced, expected: .replaced),
        Case(name: "new owner after failover", before: .some(a), after: aNewOwner, expected: .replaced),
    ])
    func classifiesEachTransition(_ example: Case) {
        var log = QuoteUpdateLog()
        if case .some(let before) = example.before {
            log.observe(Self.view(["ACME": before]), exchangeReadable: true)
        }
        let countBefore = log.updates.count
        log.observe(Self.view(["ACME": example.after], at: Fixtures.t0 + 300), exchangeReadable: true)
        let fresh = Array(log.updates.prefix(log.updates.count - countBefore))
        #expect(fresh.map(\.change) == (example.expected.map { [$0] } ?? []))
        if let update = fresh.first {
            #expect(update.symbol == "ACME")
            #expect(update.observedAtMs == Fixtures.t0 + 300)
            // A withdrawal names the quote that disappeared, anything else the new one.
            let shown = example.expected == .withdrawn ? example.before!! : example.after!
            #expect(update.node == shown.node && update.fencingToken == shown.fencingToken && update.bid == shown.bid)
        }
    }

    @Test func anExchangeOutageIsNotAWithdrawal() {
        var log = QuoteUpdateLog()
        log.observe(Self.view(["ACME": Self.a]), exchangeReadable: true)
        log.observe(Self.view(["ACME": nil]), exchangeReadable: false)
        log.observe(Self.view(["ACME": Self.a]), exchangeReadable: true)
        #expect(log.updates.map(\.change) == [.current])
    }

    @Test func recentFiltersBySymbolAndLimit() {
        var log = QuoteUpdateLog()
        log.observe(Self.view(["ACME": Self.a, "BOLT": nil]), exchangeReadable: true)
        log.observe(Self.view(["ACME": Self.aRepriced, "BOLT": Self.a]), exchangeReadable: true)
        #expect(log.recent(limit: 10, symbol: "BOLT").map(\.change) == [.placed])
        #expect(log.recent(limit: 1).count == 1)
        #expect(log.recent(limit: 10).map(\.symbol) == ["BOLT", "ACME", "ACME"])
    }

    /// Quote states per step for three symbols: 0 = no quote, k = variant k of the quote.
    static func quoteFor(_ state: Int, step: Int) -> ClusterSnapshot.QuoteView? {
        state == 0 ? nil : Fixtures.quote("n\(state)", token: Int64(state), bid: 100 - Int64(state), ask: 100 + Int64(state), at: Int64(step))
    }

    @Test func propertiesOverRandomHistories() async {
        let symbols = ["ACME", "BOLT", "CRUX"]
        await propertyCheck(count: 300, input: Gen.int(in: 0...3).array(of: 3).array(of: 1...25), Gen.int(in: 1...40)) { steps, capacity in
            var log = QuoteUpdateLog(capacity: capacity)
            var expectedChanges = 0
            var previous: [Int]?
            for (index, states) in steps.enumerated() {
                let quotes = Dictionary(uniqueKeysWithValues: zip(symbols, states.map { Self.quoteFor($0, step: index) }))
                log.observe(Self.view(quotes, at: Int64(index)), exchangeReadable: true)
                if let previous {
                    // Every step re-stamps updated_at, so an unchanged present quote is a refresh.
                    expectedChanges += zip(previous, states).filter { $0 != 0 || $1 != 0 }.count
                } else {
                    expectedChanges += states.filter { $0 != 0 }.count
                }
                previous = states
            }
            #expect(log.updates.count == min(capacity, expectedChanges))
            #expect(zip(log.updates, log.updates.dropFirst()).allSatisfy { $0.seq > $1.seq }, "newest first, by seq")
            // The newest entry of each symbol tells its current state.
            for (position, symbol) in symbols.enumerated() {
                guard let newest = log.updates.first(where: { $0.symbol == symbol }) else { continue }
                let final = steps.last![position]
                if final == 0 {
                    #expect(newest.change == .withdrawn)
                } else {
                    #expect(newest.change != .withdrawn && newest.node == "n\(final)")
                }
            }
        }
    }
}

@Suite struct EventTimelineTests {
    static func event(_ seq: Int64, _ ts: EpochMs, _ kind: String, node: String? = nil) -> ClusterEvent {
        ClusterEvent(seq: seq, tsMs: ts, kind: kind, node: node, detail: "")
    }

    static func snapshot(_ events: [ClusterEvent]) -> ClusterSnapshot {
        var snapshot = Fixtures.snapshot()
        snapshot.recentEvents = events
        return snapshot
    }

    @Test func keepsEventsBeyondTheSnapshotWindowWithoutDuplicates() {
        var timeline = EventTimeline(capacity: 10)
        timeline.observe(Self.snapshot([Self.event(2, 20, "grant"), Self.event(1, 10, "join")]))
        timeline.observe(Self.snapshot([Self.event(3, 30, "expire", node: "n2"), Self.event(2, 20, "grant")]))
        #expect(timeline.events.map(\.seq) == [3, 2, 1])
    }

    @Test func supervisorAndCoordinatorSeqsMayCollide() {
        var timeline = EventTimeline()
        // Same seq, different logs: both are real events.
        timeline.observe(Self.snapshot([Self.event(5, 50, "exit", node: "n2"), Self.event(5, 49, "expire", node: "n2")]))
        #expect(timeline.events.map(\.kind) == ["exit", "expire"])
    }

    @Test func boundedAndNewestFirst() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...1_000).array(of: 0...15).array(of: 1...10), Gen.int(in: 1...30)) { batches, capacity in
            var timeline = EventTimeline(capacity: capacity)
            var all = Set<ClusterEvent>()
            for (batchIndex, times) in batches.enumerated() {
                let events = times.enumerated().map { Self.event(Int64(batchIndex * 100 + $0.offset), Int64($0.element), "grant") }
                all.formUnion(events)
                timeline.observe(Self.snapshot(events))
            }
            #expect(timeline.events.count == min(capacity, all.count))
            #expect(Set(timeline.events).count == timeline.events.count, "no duplicates")
            #expect(zip(timeline.events, timeline.events.dropFirst()).allSatisfy { $0.tsMs >= $1.tsMs })
            // What is kept is the newest: nothing dropped is newer than the oldest kept.
            if timeline.events.count == capacity, let oldestKept = timeline.events.last {
                #expect(all.subtracting(timeline.events).allSatisfy { $0.tsMs <= oldestKept.tsMs })
            }
        }
    }
}

@Suite struct DashboardStoreTests {
    @Test func freshnessAndFailures() {
        let store = DashboardStore(facts: ClusterFacts(Fixtures.config), refreshIntervalMs: 300)
        #expect(!store.hasAttempted)
        #expect(store.frame(nowMs: Fixtures.t0, quoteLimit: 10).refresh.stale, "no view yet is stale")
        store.recordFailure("coordinator: connection refused", atMs: Fixtures.t0)
        #expect(store.hasAttempted)
        #expect(store.view == nil)
        store.record(Fixtures.snapshot(), atMs: Fixtures.t0 + 100)
        var frame = store.frame(nowMs: Fixtures.t0 + 100 + store.staleAfterMs, quoteLimit: 10)
        #expect(!frame.refresh.stale && frame.version == 1 && frame.refresh.lastError == nil)
        store.recordFailure("boom", atMs: Fixtures.t0 + 400)
        frame = store.frame(nowMs: Fixtures.t0 + 101 + store.staleAfterMs, quoteLimit: 10)
        #expect(frame.refresh.stale && frame.refresh.consecutiveFailures == 1 && frame.refresh.lastError == "boom")
        #expect(frame.view == Fixtures.snapshot(), "the last good view is kept")
    }
}
