import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import Testing
@testable import OperatorGUI

/// A 1,000-symbol cluster on the page: one page of rows, busiest first, a filter box that
/// filters, and a cluster view built from per-service summaries (requests do not grow with
/// the number of symbols).
@Suite(.serialized) struct SymbolFilterBrowserTests {
    static let count = 1_000

    static func name(_ index: Int) -> String { "S" + String(format: "%04d", index) }

    /// Fill count index × 7 mod 1,000 (all different); S0500 has no holder, S0700 no quote.
    static func snapshot(takenAt: EpochMs = Fixtures.t0) -> ClusterSnapshot {
        var base = Fixtures.snapshot(takenAt: takenAt)
        base.symbols = (0..<count).map { index in
            let node = "n\(index % 2 + 1)"
            return ClusterSnapshot.SymbolView(
                symbol: name(index), tickSize: "0.01", referencePrice: 10_000 + Int64(index), assignedTo: node,
                authority: index == 500 ? nil : .init(node: node, fencingToken: Int64(index + 1), expiresInMs: 2_000),
                quote: index == 700 ? nil : Fixtures.quote(node, token: Int64(index + 1), bid: 9_990 + Int64(index), ask: 10_010 + Int64(index)),
                position: .init(netQty: 1, avgPrice: 10_000, realizedPnl: 1, unrealizedPnl: 0, fillCount: Int64((index * 7) % 1_000)))
        }
        base.assignments = .init(version: 1, symbols: Dictionary(uniqueKeysWithValues: base.symbols.map { ($0.symbol, $0.assignedTo ?? "") }))
        base.totals = .init(realizedPnl: Int64(count), unrealizedPnl: 0, fillCount: base.symbols.reduce(0) { $0 + ($1.position?.fillCount ?? 0) })
        base.recentFills = []
        return base
    }

    /// The names in busiest order: no holder / no quote first, then most fills (S0700 has
    /// 900, S0500 500).
    static var busiest: [String] {
        let attention = [name(700), name(500)]
        let rest = (0..<count).filter { $0 != 500 && $0 != 700 }.sorted { ($0 * 7) % 1_000 > ($1 * 7) % 1_000 }.map(name)
        return attention + rest
    }

    static let config: ClusterConfig = {
        var config = Fixtures.config
        config.symbols = (0..<count).map { SymbolSpec(symbol: name($0), tickSize: "0.01", basePrice: 10_000, lotSize: 1) }
        return config
    }()

    struct Harness {
        let store: DashboardStore
        let environment: ServiceEnvironment

        init() async throws {
            let clock = ManualClock(startMs: Fixtures.t0)
            var environment = try Fixtures.environment(clock: clock)
            environment.config = SymbolFilterBrowserTests.config
            self.environment = environment
            store = DashboardStore(facts: ClusterFacts(environment.config), refreshIntervalMs: 300)
            let refresher = SnapshotRefresher(source: CannedSnapshotSource(SymbolFilterBrowserTests.snapshot()), store: store, clock: clock, logger: environment.logger)
            await refresher.refreshOnce()
        }

        func application() -> some ApplicationProtocol {
            buildApplication(environment, router: buildGUIRouter(environment, store: store))
        }
    }

    /// Rows of the symbols table (quote updates and fills carry data-symbol too).
    func symbolRows(_ dom: String) -> [DOMElement] { DOM.elements("tr", in: dom).filter { $0["data-symbol"] != nil && $0["data-holder"] != nil } }
    func positionRows(_ dom: String) -> [DOMElement] { DOM.elements("tr", in: dom).filter { $0["data-position"] != nil } }
    func pager(_ dom: String) -> DOMElement? { DOM.elements("span", in: dom).first { $0["id"] == "symbol-page" } }

    @Test func aThousandSymbolsArePagedBusiestFirstWithALabelledFilterBox() async throws {
        let harness = try await Harness()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 2_000)
            // The filter box exists and is labelled (a screen reader names it).
            let input = try #require(DOM.elements("input", in: dom).first { $0["id"] == "symbol-filter" })
            #expect(input["type"] == "search")
            #expect(DOM.elements("label", in: dom).contains { $0["for"] == "symbol-filter" && $0.text == "Filter" })
            #expect(DOM.elements("label", in: dom).contains { $0["for"] == "symbol-order" })
            #expect(DOM.elements("button", in: dom).contains { $0["id"] == "symbol-next" && $0["aria-label"] != nil })

            // One page of 50 rows, busiest first, the problems on top; positions follow the page.
            let rows = symbolRows(dom).map { $0["data-symbol"] ?? "" }
            #expect(rows == Array(Self.busiest.prefix(50)))
            #expect(positionRows(dom).map { $0["data-position"] ?? "" } == rows)
            let info = try #require(pager(dom))
            #expect(info["data-matching"] == "1000" && info["data-total"] == "1000" && info["data-pages"] == "20" && info["data-shown"] == "50")
            #expect(info.text.contains("1–50 of 1000"))
            // The summary and the totals still count every symbol.
            #expect(DOM.elements("span", in: dom).first { $0["id"] == "symbols-summary" }?.text.contains("1000 symbols") == true)
            let totals = try #require(DOM.elements("tr", in: dom).first { $0["id"] == "totals" })
            #expect(totals["data-realized"] == "10.00", "1000 × 1 tick × 0.01")
            // The authority timeline draws a lane per row on the page, not 1,000.
            let timeline = try #require(DOM.elements("svg", in: dom).first { $0["id"] == "chart-authority" })
            let lanes = DOM.elements("g", in: timeline.innerHTML).filter { $0["data-lane"] != nil }
            #expect(lanes.count <= 50, "\(lanes.count) lanes")
            // Sparklines of the rows shown have their sample: the page asked for those symbols.
            let firstRow = try #require(DOM.elements("tr", in: dom).first { $0["data-symbol"] == rows.first && $0["data-holder"] != nil })
            let reference = DOM.elements("path", in: firstRow.innerHTML).first { $0["data-series"] == "reference" }
            #expect(reference?["data-points"] == "1", "\(firstRow.innerHTML.prefix(600))")
            if let path = ProcessInfo.processInfo.environment["GUI_SCREENSHOT_1000"] {
                try await Chromium.screenshot("http://127.0.0.1:\(client.port!)/", to: path, budgetMs: 2_000)
            }
        }
    }

    /// The filter, order, page size and page are kept in the URL's fragment.
    @Test(arguments: [
        // A glob: S0000…S0099, busiest first (fills index × 7: S0099 has 693).
        ("#filter=S00*", 100, 50, ["S0099", "S0098", "S0097"]),
        // Lower case, ?, a list, by name, 25 rows a page.
        ("#filter=s099%3F,S0500&order=name&rows=25", 11, 11, ["S0500", "S0990", "S0991"]),
        // A substring.
        ("#filter=0123", 1, 1, ["S0123"]),
        // Page 3 of everything in configured order.
        ("#order=config&page=3", 1_000, 50, ["S0100", "S0101", "S0102"]),
        ("#filter=ZZZ", 0, 0, []),
    ] as [(String, Int, Int, [String])])
    func theFragmentSelects(fragment: String, matching: Int, shown: Int, firstRows: [String]) async throws {
        let harness = try await Harness()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/\(fragment)", budgetMs: 2_000)
            let info = try #require(pager(dom))
            #expect(info["data-matching"] == "\(matching)", "\(fragment): \(info.text)")
            let rows = symbolRows(dom).map { $0["data-symbol"] ?? "" }
            #expect(rows.count == shown)
            #expect(Array(rows.prefix(3)) == firstRows, "\(fragment)")
            if matching == 0 {
                #expect(DOM.elements("td", in: dom).contains { $0.text == "no symbol matches the filter" })
            }
        }
    }

    /// Typing into the box filters at once, without waiting for a poll; "next" pages. Driven
    /// in a file: page whose fetch answers a canned frame (a dumped DOM cannot be typed into).
    @Test func typingIntoTheFilterBoxFiltersTheRows() async throws {
        let harness = try await Harness()
        let nowMs = Fixtures.t0 + 100
        let frame = String(decoding: try MMJSON.encode(harness.store.frame(nowMs: nowMs, quoteLimit: 0)), as: UTF8.self)
        let history = String(decoding: try MMJSON.encode(harness.store.history(sinceMs: 0, nowMs: nowMs)), as: UTF8.self)
        let directory = NSTemporaryDirectory() + "mm-gui-filter-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try DashboardAssets.script.write(toFile: directory + "/app.js", atomically: true, encoding: .utf8)
        try DashboardAssets.styles.write(toFile: directory + "/app.css", atomically: true, encoding: .utf8)
        let driver = """
        <script>
        const FRAME = \(frame);
        const HISTORY = \(history);
        window.fetch = async (url) => ({ ok: true, status: 200, json: async () => (String(url).startsWith('/api/history') ? HISTORY : FRAME) });
        window.addEventListener('load', () => {
          setTimeout(() => {
            const box = document.getElementById('symbol-filter');
            box.value = 's01*';
            box.dispatchEvent(new Event('input'));
            document.body.dataset.afterTyping = [...document.querySelectorAll('#symbols tbody tr[data-symbol]')].map((r) => r.dataset.symbol).join(' ');
            document.getElementById('symbol-next').click();
            document.body.dataset.afterNext = [...document.querySelectorAll('#symbols tbody tr[data-symbol]')].map((r) => r.dataset.symbol).join(' ');
          }, 800);
        });
        </script>
        """
        let page = DashboardAssets.html
            .replacingOccurrences(of: "href=\"/app.css\"", with: "href=\"app.css\"")
            .replacingOccurrences(of: "<script src=\"/app.js\" defer></script>", with: driver + "<script src=\"app.js\" defer></script>")
        try page.write(toFile: directory + "/index.html", atomically: true, encoding: .utf8)
        let dom = try await Chromium.dumpDOM("file://\(directory)/index.html", budgetMs: 3_000)
        let body = try #require(DOM.body(dom))
        let typed = (body["data-after-typing"] ?? "").split(separator: " ").map(String.init)
        // S0100…S0199: 100 match, the first page of 50 shown at once, busiest first.
        let expected = Self.busiest.filter { $0.hasPrefix("S01") }
        #expect(typed == Array(expected.prefix(50)), "\(typed.prefix(5))")
        let next = (body["data-after-next"] ?? "").split(separator: " ").map(String.init)
        #expect(next == Array(expected.dropFirst(50).prefix(50)))
        let info = try #require(pager(dom))
        #expect(info["data-matching"] == "100" && info["data-page"] == "2")
        #expect(DOM.elements("button", in: dom).first { $0["id"] == "symbol-next" }?["disabled"] != nil, "no page after the last")
        #expect(positionRows(dom).count == 50)
    }

    /// `/api/history?symbols=`: samples only of the symbols asked for, spans of every symbol.
    @Test func historyCarriesSamplesOnlyOfTheSymbolsAskedFor() async throws {
        let harness = try await Harness()
        let all = harness.store.history(sinceMs: 0, nowMs: Fixtures.t0)
        #expect(all.symbols.count == Self.count && all.symbols.allSatisfy { $0.samples.count == 1 })
        let some = harness.store.history(sinceMs: 0, nowMs: Fixtures.t0, samplesOf: ["S0001", "S0500"])
        #expect(some.symbols.count == Self.count, "every symbol listed, for its spans and markers")
        #expect(some.symbols.filter { !$0.samples.isEmpty }.map(\.symbol) == ["S0001", "S0500"])
        #expect(some.symbols.first { $0.symbol == "S0500" }?.unquoted.isEmpty == true && !some.total.isEmpty)
        try await harness.application().test(.router) { client in
            for (query, sampled) in [("symbols=S0002,S0003", ["S0002", "S0003"]), ("symbols=", []), ("symbols=NOPE", []), ("since_ms=0", Self.config.symbolNames)] {
                try await client.execute(uri: "/api/history?" + query, method: .get) { response in
                    #expect(response.status == .ok)
                    let page = try MMJSON.decode(HistoryPage.self, from: Data(buffer: response.body))
                    #expect(page.symbols.filter { !$0.samples.isEmpty }.map(\.symbol) == sampled, "\(query)")
                }
            }
        }
    }

    /// The cluster view is built from each service's summary routes: the same requests for
    /// 1,000 symbols as for 6, none naming a symbol.
    @Test func theViewCostsTheSameRequestsAtAThousandSymbols() async throws {
        func requests(_ config: ClusterConfig) async throws -> [String] {
            var environment = try Fixtures.environment()
            environment.config = config
            let transport = RecordingTransport()
            environment.transport = transport
            _ = try await ClusterSnapshotSource(environment: environment).snapshot()
            return transport.requests.withLock { $0 }.map { $0.url }.sorted()
        }
        let small = try await requests(Fixtures.config)
        let large = try await requests(Self.config)
        #expect(small == large)
        #expect(large.count <= 12, "\(large)")
        #expect(!large.contains { url in Self.config.symbolNames.prefix(20).contains { url.contains($0) } })
    }
}
