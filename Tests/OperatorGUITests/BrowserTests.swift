import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import PropertyBased
import Testing
@testable import OperatorGUI

/// The page as a browser renders it, against canned cluster views.
@Suite(.serialized) struct BrowserTests {
    func rows(_ dom: String, _ key: String) -> [String: DOMElement] {
        Dictionary(DOM.elements("tr", in: dom).compactMap { row in row[key].map { ($0, row) } }, uniquingKeysWith: { first, _ in first })
    }

    @Test func everySymbolShowsItsHolderQuoteAndWhatIsMissing() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 2_000)
            #expect(DOM.body(dom)?["data-state"] == "live")

            let symbols = rows(dom, "data-symbol")
            #expect(Set(symbols.keys) == ["ACME", "BOLT", "EVOK"])
            let acme = try #require(symbols["ACME"])
            #expect(acme["data-holder"] == "n1" && acme["data-token"] == "7" && acme["data-quote"] == "present")
            #expect(acme["data-problems"] == "")
            // Prices are ticks × tick size: 10003 × 0.01, right-aligned cells.
            #expect(acme.text.contains("100.03") && acme.text.contains("100.07") && acme.text.contains("100.05"))
            #expect(acme.innerHTML.contains("class=\"num\" data-field=\"bid\">100.03<"))

            let bolt = try #require(symbols["BOLT"])
            #expect(bolt["data-holder"] == "n2" && bolt["data-quote"] == "none")
            #expect(bolt["class"] == "alert" && bolt.text.contains("⚠ NO QUOTE"), "a missing quote stands out in text, not only colour")

            let evok = try #require(symbols["EVOK"])
            #expect(evok["data-holder"] == "" && evok["data-problems"] == "no holder")
            #expect(evok["class"] == "alert" && evok.text.contains("⚠ NO HOLDER"))
            // Tick 0.05: 799 ticks are 39.95, the reference 801 ticks are 40.05.
            #expect(evok.text.contains("39.95") && evok.text.contains("40.05"))
            #expect(evok.text.contains("withdrawn"), "the withdrawn ask side is labelled")

            let positions = rows(dom, "data-position")
            #expect(positions["ACME"]?["data-net-qty"] == "-3")
            #expect(positions["ACME"]?.text.contains("12.34") == true, "realized 1234 ticks × 0.01")
            #expect(positions["EVOK"]?.text.contains("-0.50") == true, "realized -10 ticks × 0.05")
            // Totals across tick sizes: 12.34 - 0.50 = 11.84; 0.15 + 0.20 = 0.35.
            let totals = try #require(DOM.elements("tr", in: dom).first { $0["id"] == "totals" })
            #expect(totals["data-realized"] == "11.84" && totals["data-unrealized"] == "0.35")

            let members = rows(dom, "data-member")
            #expect(members["n1"]?["data-status"] == "alive" && members["n3"]?["data-status"] == "expired")
            #expect(members["n3"]?.text.contains("expired") == true)
            let processes = rows(dom, "data-process")
            #expect(processes["n3"]?["data-state"] == "backoff" && processes["n3"]?["data-restarts"] == "2")

            let events = DOM.elements("li", in: dom).filter { $0["data-event-kind"] != nil }
            #expect(events.map { $0["data-event-kind"] ?? "" } == ["expire", "rebalance", "exit"], "newest first")
            #expect(events.first?["data-node"] == "n3")

            let fills = DOM.elements("tr", in: dom).filter { $0["data-fill"] != nil }
            #expect(fills.map { $0["data-seq"] ?? "" } == ["11", "10"])
            #expect(fills.first?.text.contains("100.07") == true)
            let quoteUpdates = DOM.elements("tr", in: dom).filter { $0["data-quote-update"] != nil }
            #expect(Set(quoteUpdates.compactMap { $0["data-symbol"] }) == ["ACME", "EVOK"])
        }
    }

    @Test func thePageUpdatesLiveWithoutAReload() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        try await harness.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/"
            // A long virtual budget: the page keeps polling while the test changes the cluster.
            async let dom = Chromium.dumpDOM(url, budgetMs: 30_000)
            let served = await eventuallyTrue(timeout: .seconds(30)) { harness.store.framesServed >= 2 }
            #expect(served, "the page never polled /api/dashboard")
            // Failover: n1's process dies (the supervisor's death notice), n2 takes ACME with a
            // higher fencing token.
            var failedOver = Fixtures.snapshot(takenAt: Fixtures.t0 + 1_000, acmeQuote: Fixtures.quote("n2", token: 8, bid: 10_001, ask: 10_009))
            failedOver.symbols[0].authority = .init(node: "n2", fencingToken: 8, expiresInMs: 3_000)
            failedOver.members[0].status = .dead
            failedOver.recentEvents.insert(
                ClusterEvent(seq: 41, tsMs: Fixtures.t0 + 850, kind: "death", node: "n1", detail: "process died (incarnation a1, pid 4242, signal 9)"), at: 0)
            failedOver.recentEvents.insert(ClusterEvent(seq: 42, tsMs: Fixtures.t0 + 900, kind: "grant", symbol: "ACME", node: "n2", fencingToken: 8, detail: ""), at: 0)
            harness.source.set(failedOver)
            harness.clock.advance(byMs: 1_000)
            await harness.refresher.refreshOnce()
            let rendered = try await dom
            let body = try #require(DOM.body(rendered))
            #expect(body["data-first-version"] == "1", "the page first showed the view from before the failover")
            #expect(body["data-version"] == "2")
            let acme = try #require(rows(rendered, "data-symbol")["ACME"])
            #expect(acme["data-holder"] == "n2" && acme["data-token"] == "8" && acme["data-bid"] == "10001")
            let n1 = try #require(rows(rendered, "data-member")["n1"])
            #expect(n1["data-status"] == "dead" && n1["class"] == "alert" && n1.text.contains("✖ dead"), "a dead member stands out in text: \(n1.text)")
            let items = DOM.elements("li", in: rendered).filter { $0["data-event-kind"] != nil }
            #expect(items.first?["data-event-kind"] == "grant" && items.first?["data-symbol"] == "ACME")
            #expect(items.dropFirst().first?["data-event-kind"] == "death" && items.dropFirst().first?.text.contains("✖ death") == true)
            let update = DOM.elements("tr", in: rendered).first { $0["data-quote-update"] != nil }
            #expect(update?["data-symbol"] == "ACME" && update?["data-change"] == "replaced")
        }
    }

    @Test func aClusterViewThatStopsRefreshingIsFlaggedStale() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        harness.source.fail("coordinator: connection refused")
        harness.clock.advance(byMs: harness.store.staleAfterMs + 1)
        await harness.refresher.refreshOnce()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 1_500)
            #expect(DOM.body(dom)?["data-state"] == "stale")
            let banner = DOM.elements("p", in: dom).first { $0["data-banner"] == "stale" }
            #expect(banner?.text.contains("connection refused") == true)
            #expect(rows(dom, "data-symbol").count == 3, "the last good view stays visible")
        }
    }

    @Test func unreadableServicesAreNamedOnThePage() async throws {
        let harness = try Fixtures.Harness(Fixtures.snapshot(errors: [.init(service: "supervisor", error: "GET /v1/processes: unreachable: connection refused")]))
        await harness.refresher.refreshOnce()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 1_500)
            let banner = DOM.elements("p", in: dom).first { $0["data-banner"] == "service-error" }
            #expect(banner?["data-service"] == "supervisor")
            #expect(banner?.text.contains("connection refused") == true)
        }
    }

    /// The page's price formatting (BigInt) against an integer reference, over random
    /// prices and tick sizes, in the real browser engine.
    @Test func priceFormattingInTheBrowserMatchesIntegerArithmetic() async throws {
        var cases: [(ticks: Int64, tickSize: String)] = [
            (10_005, "0.01"), (799, "0.05"), (0, "0.01"), (-10, "0.05"), (1, "0.0001"), (-1, "0.01"),
            (123_456_789, "0.01"), (42, "1"), (7, "2.5"), (9_007_199_254_740_991, "1"), (-9_007_199_254_740_991, "0.01"),
        ]
        var generator = SystemRandomNumberGenerator()
        let tickSizes = ["0.01", "0.05", "0.25", "1", "0.001", "0.5", "10", "0.0005"]
        for _ in 0..<200 {
            let magnitude = Int64.random(in: 0...[99, 99_999, 9_999_999_999, 9_007_199_254_740_991].randomElement(using: &generator)!, using: &generator)
            cases.append((Bool.random(using: &generator) ? magnitude : -magnitude, tickSizes.randomElement(using: &generator)!))
        }
        let directory = NSTemporaryDirectory() + "mm-gui-format-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try DashboardAssets.script.write(toFile: directory + "/app.js", atomically: true, encoding: .utf8)
        let input = cases.map { "[\($0.ticks),\"\($0.tickSize)\"]" }.joined(separator: ",")
        let page = """
        <!doctype html><html><body><pre id="out"></pre><script src="app.js"></script>
        <script>document.getElementById('out').textContent = [\(input)].map(([t, s]) => formatTicks(t, s)).join('\\n');</script>
        </body></html>
        """
        try page.write(toFile: directory + "/format.html", atomically: true, encoding: .utf8)
        let dom = try await Chromium.dumpDOM("file://\(directory)/format.html", budgetMs: 500)
        let output = try #require(DOM.elements("pre", in: dom).first).innerHTML.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(output.count == cases.count)
        for (index, example) in cases.enumerated() where index < output.count {
            #expect(output[index] == ReferenceFormat.ticks(example.ticks, tickSize: example.tickSize), "\(example.ticks) × \(example.tickSize)")
        }
    }
}

/// The expected rendering, computed independently: decimal digits by integer arithmetic.
enum ReferenceFormat {
    static func ticks(_ ticks: Int64, tickSize: String) -> String {
        let parts = tickSize.split(separator: ".", omittingEmptySubsequences: false)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        let mantissa = Int64(String(parts[0]) + fraction)!
        let (product, overflow) = ticks.magnitude.multipliedReportingOverflow(by: mantissa.magnitude)
        let digits: String
        if overflow {
            // Beyond UInt64: multiply as decimal strings (the browser uses BigInt).
            digits = multiply(String(ticks.magnitude), by: String(mantissa))
        } else {
            digits = String(product)
        }
        var whole = digits
        var decimals = ""
        if !fraction.isEmpty {
            whole = String(repeating: "0", count: max(0, fraction.count + 1 - digits.count)) + digits
            decimals = "." + whole.suffix(fraction.count)
            whole = String(whole.dropLast(fraction.count))
        }
        var grouped = ""
        for (offset, character) in whole.reversed().enumerated() {
            if offset > 0 && offset % 3 == 0 { grouped.append(",") }
            grouped.append(character)
        }
        return (ticks < 0 ? "-" : "") + String(grouped.reversed()) + decimals
    }

    static func multiply(_ lhs: String, by rhs: String) -> String {
        var result = [Int](repeating: 0, count: lhs.count + rhs.count)
        for (i, a) in lhs.reversed().enumerated() {
            for (j, b) in rhs.reversed().enumerated() {
                result[i + j] += Int(String(a))! * Int(String(b))!
                result[i + j + 1] += result[i + j] / 10
                result[i + j] %= 10
            }
        }
        let text = result.reversed().map(String.init).joined().drop { $0 == "0" }
        return text.isEmpty ? "0" : String(text)
    }
}

func eventuallyTrue(timeout: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}
