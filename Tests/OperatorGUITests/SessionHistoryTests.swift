import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import Testing
@testable import OperatorGUI

/// The charts' history: a bounded, pure fold of snapshots, and its route.
@Suite struct SessionHistoryTests {
    static let symbols = Fixtures.snapshot().symbols.map { SymbolSpec(symbol: $0.symbol, tickSize: $0.tickSize, basePrice: 100, lotSize: 1) }

    func snapshot(at offset: EpochMs, acme: ClusterSnapshot.Authority? = .init(node: "n1", fencingToken: 7, expiresInMs: 2_000),
                  acmeQuote: ClusterSnapshot.QuoteView? = Fixtures.quote("n1", token: 7, bid: 10_003, ask: 10_007), events: [ClusterEvent] = [],
                  errors: [ClusterSnapshot.ServiceError] = []) -> ClusterSnapshot {
        var snapshot = Fixtures.snapshot(takenAt: Fixtures.t0 + offset, acmeQuote: acmeQuote, errors: errors)
        snapshot.symbols[0].authority = acme
        snapshot.recentEvents = events
        return snapshot
    }

    @Test func ringBufferKeepsTheNewestInOrder() {
        var ring = RingBuffer<Int>(capacity: 3)
        for value in 1...7 { ring.append(value) }
        #expect(ring.elements == [5, 6, 7] && ring.count == 3 && ring.last == 7)
        #expect(ring.suffix { $0 <= 5 } == [6, 7])
        #expect(ring.suffix { $0 <= 0 } == [5, 6, 7])
        #expect(ring.suffix { $0 <= 9 } == [])
    }

    @Test func everySeriesIsBoundedAndSampledAtItsResolution() {
        var history = SessionHistory(symbols: Self.symbols, resolutionMs: 1_000, capacity: 5)
        // A refresh every 300 ms for 20 s: one sample per second at most, the last 5 kept.
        for step in 0..<67 { history.observe(snapshot(at: Int64(step) * 300), readable: .init()) }
        let page = history.page(sinceMs: 0, nowMs: Fixtures.t0 + 20_000)
        #expect(page.total.count == 5 && page.symbols.allSatisfy { $0.samples.count == 5 })
        #expect(history.sampleCount == 5 * (Self.symbols.count + 1))
        // The first view of each second: 15.0, 16.2, 17.1, 18.0, 19.2 s.
        let times = page.total.map(\.tMs)
        #expect(times.map { $0 - Fixtures.t0 } == [15_000, 16_200, 17_100, 18_000, 19_200], "\(times)")
        #expect(page.windowMs == 5_000 && page.capacity == 5 && page.resolutionMs == 1_000)
        // since_ms filters samples only.
        let later = history.page(sinceMs: times[2], nowMs: Fixtures.t0 + 20_000)
        #expect(later.total.map(\.tMs) == Array(times[3...]))
        #expect(later.symbols[0].samples.map(\.tMs) == Array(times[3...]))
    }

    @Test func totalPnlIsExactAcrossTickSizes() throws {
        var history = SessionHistory(symbols: Self.symbols)
        history.observe(snapshot(at: 0), readable: .init())
        let page = history.page(sinceMs: 0, nowMs: Fixtures.t0)
        // ACME (0.01): 1234 + 15 ticks×lots; EVOK (0.05): -10 + 4 → ×5 at scale 2; BOLT: none.
        #expect(page.pnlScale == 2)
        let total = try #require(page.total.first)
        #expect(total.realizedPnl == 1_234 - 50 && total.pnl == 1_249 - 30 && total.complete)
        let acme = try #require(page.symbols.first { $0.symbol == "ACME" }?.samples.first)
        #expect(acme.reference == 10_005 && acme.bid == 10_003 && acme.ask == 10_007 && acme.netQty == -3 && acme.realizedPnl == 1_234 && acme.unrealizedPnl == 15)
        let bolt = try #require(page.symbols.first { $0.symbol == "BOLT" }?.samples.first)
        #expect(bolt.netQty == 0 && bolt.bid == nil, "no position is a flat position; no quote is no band")
        // An unreadable state service is a gap, not a flat position.
        history.observe(snapshot(at: 1_000, errors: [.init(service: "state", error: "down")]), readable: SessionHistory.Readable(snapshot(at: 1_000, errors: [.init(service: "state", error: "down")])))
        let gap = history.page(sinceMs: Fixtures.t0, nowMs: Fixtures.t0 + 1_000)
        #expect(gap.total.first?.pnl == nil && gap.symbols[0].samples.first?.netQty == nil)
    }

    @Test func authorityAndUnquotedSpansFollowTheViews() throws {
        var history = SessionHistory(symbols: Self.symbols)
        history.observe(snapshot(at: 0), readable: .init())
        history.observe(snapshot(at: 300, acme: nil, acmeQuote: nil), readable: .init())
        // The exchange blinks: no quote is known, so no gap is opened or closed.
        history.observe(snapshot(at: 600, acme: nil, acmeQuote: nil, errors: [.init(service: "exchange", error: "down")]),
                        readable: .init(exchange: false))
        history.observe(snapshot(at: 900, acme: .init(node: "n2", fencingToken: 8, expiresInMs: 2_000), acmeQuote: Fixtures.quote("n2", token: 8, bid: 1, ask: 2)), readable: .init())
        let acme = try #require(history.page(sinceMs: 0, nowMs: Fixtures.t0 + 900).symbols.first)
        #expect(acme.authority == [
            AuthoritySpan(fromMs: Fixtures.t0, toMs: Fixtures.t0 + 300, node: "n1", fencingToken: 7),
            AuthoritySpan(fromMs: Fixtures.t0 + 300, toMs: Fixtures.t0 + 900, node: nil, fencingToken: nil),
            AuthoritySpan(fromMs: Fixtures.t0 + 900, toMs: nil, node: "n2", fencingToken: 8),
        ])
        #expect(acme.unquoted == [UnquotedSpan(fromMs: Fixtures.t0 + 300, toMs: Fixtures.t0 + 900)])
        let bolt = try #require(history.page(sinceMs: 0, nowMs: Fixtures.t0 + 900).symbols.first { $0.symbol == "BOLT" })
        #expect(bolt.unquoted == [UnquotedSpan(fromMs: Fixtures.t0, toMs: nil)], "BOLT never had a quote: one open gap")
    }

    @Test func aGrantToAnotherNodeAfterExpiryOrRevocationIsAFailover() throws {
        func event(_ seq: Int64, _ kind: String, _ symbol: String, _ node: String, token: Int64, at: EpochMs) -> ClusterEvent {
            ClusterEvent(seq: seq, tsMs: Fixtures.t0 + at, kind: kind, symbol: symbol, node: node, fencingToken: token, expiresAtMs: Fixtures.t0 + at, detail: "")
        }
        var history = SessionHistory(symbols: Self.symbols)
        // Newest first, as in a snapshot; a supervisor event with a colliding seq is ignored.
        history.observe(snapshot(at: 0, events: [
            event(4, "grant", "ACME", "n2", token: 8, at: -100),
            event(3, "grant_expired", "ACME", "n1", token: 7, at: -200),
            event(2, "grant", "BOLT", "n3", token: 4, at: -300),
            event(1, "release", "BOLT", "n2", token: 3, at: -400),
            ClusterEvent(seq: 9, tsMs: Fixtures.t0, kind: "exit", node: "n1", detail: "signal 9"),
        ]), readable: .init())
        // Seen again in the next snapshot: not counted twice. Then a revocation and re-grant.
        history.observe(snapshot(at: 300, events: [
            event(7, "grant", "EVOK", "n1", token: 6, at: 250),
            event(6, "revoke", "EVOK", "n3", token: 5, at: 200),
            event(5, "grant", "BOLT", "n3", token: 4, at: 100),
            event(4, "grant", "ACME", "n2", token: 8, at: -100),
        ]), readable: .init())
        // The same node getting its symbol back after an expiry is not a failover.
        history.observe(snapshot(at: 600, events: [
            event(9, "grant", "ACME", "n2", token: 9, at: 550),
            event(8, "grant_expired", "ACME", "n2", token: 8, at: 500),
        ]), readable: .init())
        let page = history.page(sinceMs: 0, nowMs: Fixtures.t0 + 600)
        let bySymbol = Dictionary(uniqueKeysWithValues: page.symbols.map { ($0.symbol, $0.failovers) })
        #expect(bySymbol["ACME"] == [FailoverMarker(tsMs: Fixtures.t0 - 100, fromNode: "n1", toNode: "n2", fencingToken: 8, cause: "grant_expired", endedAtMs: Fixtures.t0 - 200)])
        #expect(bySymbol["BOLT"] == [], "a release is a planned handover")
        #expect(bySymbol["EVOK"] == [FailoverMarker(tsMs: Fixtures.t0 + 250, fromNode: "n3", toNode: "n1", fencingToken: 6, cause: "revoke", endedAtMs: Fixtures.t0 + 200)])
    }

    @Test func spansThatEndedBeforeTheWindowAreDropped() throws {
        var history = SessionHistory(symbols: Self.symbols, resolutionMs: 1_000, capacity: 3)
        history.observe(snapshot(at: 0), readable: .init())
        history.observe(snapshot(at: 1_000, acme: nil), readable: .init())
        history.observe(snapshot(at: 10_000, acme: nil), readable: .init())
        let acme = try #require(history.page(sinceMs: 0, nowMs: Fixtures.t0 + 10_000).symbols.first)
        #expect(acme.authority == [AuthoritySpan(fromMs: Fixtures.t0 + 1_000, toMs: nil, node: nil, fencingToken: nil)])
    }

    @Test func historyRouteServesThePageAndRefusesBadInput() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        harness.clock.advance(byMs: 1_000)
        harness.source.set(Fixtures.snapshot(takenAt: Fixtures.t0 + 1_000))
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: GUIRoutes.history, method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.cacheControl] == "no-store")
                let page = try MMJSON.decode(HistoryPage.self, from: Data(buffer: response.body))
                #expect(page.total.count == 2 && page.symbols.map(\.symbol) == Fixtures.config.symbolNames)
                #expect(page.windowMs == 1_800_000 && page.resolutionMs == 1_000 && page.serverNowMs == Fixtures.t0 + 1_000)
                let object = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(object?["pnl_scale"] as? Int == 2, "snake_case like every API document")
            }
            try await client.execute(uri: GUIRoutes.history + "?since_ms=\(Fixtures.t0)", method: .get) { response in
                let page = try MMJSON.decode(HistoryPage.self, from: Data(buffer: response.body))
                #expect(page.total.map(\.tMs) == [Fixtures.t0 + 1_000] && page.sinceMs == Fixtures.t0)
            }
            for bad in ["-1", "soon"] {
                try await client.execute(uri: GUIRoutes.history + "?since_ms=\(bad)", method: .get) { response in
                    #expect(response.status == .badRequest)
                    let envelope = try MMJSON.decode(ErrorEnvelope.self, from: Data(buffer: response.body))
                    #expect(envelope.error.code == "invalid_field")
                }
            }
        }
    }
}
