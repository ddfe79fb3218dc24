import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import Testing
@testable import OperatorGUI

/// The session charts as a browser draws them, against canned views.
@Suite(.serialized) struct ChartsBrowserTests {
    func points(_ element: DOMElement?) -> Int { element?["data-points"].flatMap { Int($0) } ?? 0 }

    /// Twelve seconds of views, one a second: ACME's price walks, its position grows; at
    /// second 8 n1's grant on ACME expires and n2 takes it over.
    static func session(_ harness: Fixtures.Harness) async {
        for second in 0..<12 {
            let at = Fixtures.t0 + Int64(second) * 1_000
            let failedOver = second >= 8
            var view = Fixtures.snapshot(takenAt: at, acmeQuote: failedOver
                ? Fixtures.quote("n2", token: 8, bid: 10_000 + Int64(second), ask: 10_006 + Int64(second))
                : Fixtures.quote("n1", token: 7, bid: 10_000 + Int64(second), ask: 10_004 + Int64(second)))
            view.symbols[0].referencePrice = 10_002 + Int64(second)
            view.symbols[0].position?.netQty = Int64(second) - 3
            view.symbols[0].position?.realizedPnl = 1_000 + Int64(second) * 25
            if failedOver {
                view.symbols[0].authority = .init(node: "n2", fencingToken: 8, expiresInMs: 2_000)
                view.recentEvents.insert(contentsOf: [
                    ClusterEvent(seq: 52, tsMs: Fixtures.t0 + 7_900, kind: "grant", symbol: "ACME", node: "n2", fencingToken: 8, expiresAtMs: Fixtures.t0 + 9_900, detail: "granted for 2000 ms"),
                    ClusterEvent(seq: 51, tsMs: Fixtures.t0 + 7_800, kind: "grant_expired", symbol: "ACME", node: "n1", fencingToken: 7, expiresAtMs: Fixtures.t0 + 7_700, detail: ""),
                ], at: 0)
            }
            harness.source.set(view)
            harness.clock.advance(byMs: second == 0 ? 0 : 1_000)
            await harness.refresher.refreshOnce()
        }
    }

    @Test func chartsAreDrawnFromTheSessionHistory() async throws {
        let harness = try Fixtures.Harness()
        await Self.session(harness)
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 3_000)
            let body = try #require(DOM.body(dom))
            #expect(Int(body["data-history-draws"] ?? "0") ?? 0 >= 1, "the page never drew the history")

            // Sparklines: one per symbol row, inside the row, with the reference line and band.
            let rows = DOM.elements("tr", in: dom).filter { $0["data-symbol"] != nil }
            let acmeRow = try #require(rows.first { $0["data-symbol"] == "ACME" })
            let acmePaths = DOM.elements("path", in: acmeRow.innerHTML)
            #expect(points(acmePaths.first { $0["data-series"] == "reference" }) == 12, "\(acmePaths.map(\.attributes))")
            #expect(points(acmePaths.first { $0["data-series"] == "band" }) == 12)
            #expect(acmePaths.first { $0["data-series"] == "reference" }?["d"]?.hasPrefix("M") == true)
            // Its tooltip (set by the chart code) survives the row being patched on every poll.
            #expect(DOM.elements("td", in: acmeRow.innerHTML).first { $0["data-field"] == "spark" }?["title"]?.hasPrefix("ACME over the last") == true)

            // The selected symbol (the first by default): price, band, PnL, net position.
            let svgs = Dictionary(DOM.elements("svg", in: dom).compactMap { svg in svg["id"].map { ($0, svg) } }, uniquingKeysWith: { first, _ in first })
            #expect(DOM.elements("span", in: dom).first { $0["id"] == "detail-symbol" }?.text == "ACME")
            let price = DOM.elements("path", in: try #require(svgs["chart-price"]).innerHTML)
            #expect(points(price.first { $0["data-series"] == "reference" }) == 12)
            #expect(points(price.first { $0["data-series"] == "band" }) == 12)
            // Axis labels are exact prices: the highest reference is 10013 ticks × 0.01.
            #expect(DOM.elements("text", in: try #require(svgs["chart-price"]).innerHTML).contains { $0.text == "100.17" }, "the band's top: 10017 ticks")
            #expect(points(DOM.elements("path", in: try #require(svgs["chart-symbol-pnl"]).innerHTML).first { $0["data-series"] == "pnl" }) == 12)
            #expect(points(DOM.elements("path", in: try #require(svgs["chart-symbol-net"]).innerHTML).first { $0["data-series"] == "net" }) == 12)
            #expect(points(DOM.elements("path", in: try #require(svgs["chart-total-pnl"]).innerHTML).first { $0["data-series"] == "pnl" }) == 12)
            #expect(points(DOM.elements("path", in: try #require(svgs["chart-net"]).innerHTML).first { $0["data-series"] == "net-ACME" }) == 12)
            // Total PnL now: ACME 1275 + 15 (×0.01) and EVOK -10 + 4 (×0.05) = 12.90 - 0.30.
            #expect(DOM.elements("strong", in: dom).first { $0["id"] == "total-pnl-now" }?.text == "12.60")

            // Authority: n1 then n2 on ACME, the failover marked, BOLT unquoted in red.
            let timeline = try #require(svgs["chart-authority"]).innerHTML
            let bars = DOM.elements("rect", in: timeline)
            let acmeHolders = bars.filter { $0["data-symbol"] == "ACME" }.compactMap { $0["data-holder"] }
            #expect(acmeHolders == ["n1", "n2"], "\(acmeHolders)")
            #expect(bars.contains { $0["data-symbol"] == "EVOK" && $0["data-holder"] == "" && $0["class"] == "unheld" }, "EVOK has no holder: a red span")
            #expect(bars.contains { $0["data-unquoted"] == "BOLT" })
            let markers = DOM.elements("g", in: timeline).filter { $0["data-failover"] != nil }
            #expect(markers.count == 1 && markers.first?["data-failover"] == "ACME" && markers.first?["data-from-node"] == "n1" && markers.first?["data-to-node"] == "n2")
            #expect(markers.first?.text.contains("failover n1 → n2 #8") == true)
            #expect(DOM.elements("span", in: dom).first { $0["id"] == "authority-summary" }?.text.contains("1 failover, latest n1 → n2") == true)
        }
    }

    /// Rows are patched in place: across refreshes that change a quote, the symbol rows are
    /// the elements first inserted (the tbody counts insertions in data-created) and show
    /// the new price.
    @Test func rowsArePatchedInPlaceNotRebuilt() async throws {
        let harness = try Fixtures.Harness()
        await Self.session(harness)
        try await harness.application().test(.live) { client in
            async let dom = Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 30_000)
            var served = harness.store.framesServed
            for step in 1...3 {
                let polled = await eventuallyTrue(timeout: .seconds(30)) { harness.store.framesServed >= served + 2 }
                #expect(polled, "the page stopped polling")
                served = harness.store.framesServed
                harness.source.set(Fixtures.snapshot(takenAt: Fixtures.t0 + 12_000 + Int64(step) * 1_000,
                                                     acmeQuote: Fixtures.quote("n1", token: 7, bid: 10_100 + Int64(step), ask: 10_200)))
                harness.clock.advance(byMs: 1_000)
                await harness.refresher.refreshOnce()
            }
            let rendered = try await dom
            let body = try #require(DOM.body(rendered))
            #expect(Int(body["data-renders"] ?? "0") ?? 0 >= 3, "the page re-rendered for each new version")
            let tbody = try #require(DOM.elements("tbody", in: rendered).first { $0["data-created"] != nil && $0.innerHTML.contains("data-symbol=") })
            #expect(tbody["data-created"] == "3", "every symbol row was inserted once and then patched")
            let acme = try #require(DOM.elements("tr", in: rendered).first { $0["data-symbol"] == "ACME" })
            #expect(acme["data-bid"] == "10103")
            // The sparkline's tooltip (set by the chart code, not the row) survived the patches.
            #expect(DOM.elements("td", in: acme.innerHTML).first { $0["data-field"] == "spark" }?["title"]?.hasPrefix("ACME over the last") == true)
            // The live regions (connection state, banners, authority summary) changed when
            // the page went live and when it first counted the failover, not on every poll.
            let polls = harness.store.framesServed
            let liveUpdates = Int(body["data-live-updates"] ?? "0") ?? 0
            #expect(polls >= 6 && (1...3).contains(liveUpdates), "\(liveUpdates) live-region updates over \(polls) polls")
        }
    }
}
