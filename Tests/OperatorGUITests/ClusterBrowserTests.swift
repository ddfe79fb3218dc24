import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing
@testable import OperatorGUI

/// The dashboard against a real cluster of `mmd` processes: every symbol shows a holder and
/// a quote; a node killed with SIGKILL shows up as expired, its symbols move to other
/// holders, the timeline records it, and the node's return is visible too.
@Suite(.serialized) struct ClusterBrowserTests {
    func view(_ url: String) async -> ClusterSnapshot? {
        guard let response = try? await AHCTransport.shared.send(TransportRequest(method: .GET, url: url + GUIRoutes.view, timeoutMs: 2_000)),
              response.status == 200 else { return nil }
        return try? MMJSON.decode(ClusterSnapshot.self, from: response.body)
    }

    func symbolRows(_ dom: String) -> [String: DOMElement] {
        Dictionary(DOM.elements("tr", in: dom).compactMap { row in row["data-symbol"].map { ($0, row) } }, uniquingKeysWith: { first, _ in first })
    }

    func memberRows(_ dom: String) -> [String: DOMElement] {
        Dictionary(DOM.elements("tr", in: dom).compactMap { row in row["data-member"].map { ($0, row) } }, uniquingKeysWith: { first, _ in first })
    }

    @Test(.timeLimit(.minutes(3)))
    func killingANodeIsVisibleOnThePage() async throws {
        let cluster = try TestCluster("gui-live", overrides: ["nodes.count": "3"])
        var processes: [ClusterProcess: MMDProcess] = [:]
        defer { cluster.removeData() }
        do {
            for process in [ClusterProcess.coordinator, .state, .exchange, .node(1), .node(2), .node(3), .gui] {
                processes[process] = try await cluster.start(process)
            }
            let config = try await cluster.config
            let gui = config.baseURL(of: .gui)
            let symbols = config.symbolNames

            // 1. Healthy: every symbol held and quoted, in the server's view and on the page.
            let healthy = await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                guard let view = await view(gui) else { return false }
                return view.symbols.allSatisfy { $0.authority != nil && $0.quote != nil } && view.members.filter { $0.status == .alive }.count == 3
            }
            if !healthy { Issue.record("the cluster never had every symbol held and quoted: \(String(describing: await view(gui)?.symbols))") }
            try #require(healthy)
            let dom = try await Chromium.dumpDOM(gui + "/", budgetMs: 1_500)
            let rows = symbolRows(dom)
            #expect(Set(rows.keys) == Set(symbols))
            for symbol in symbols {
                #expect(rows[symbol]?["data-holder"]?.isEmpty == false, "\(symbol) shows no holder")
                #expect(rows[symbol]?["data-quote"] == "present", "\(symbol) shows no quote")
                #expect(rows[symbol]?["data-problems"] == "", "\(symbol): \(rows[symbol]?["data-problems"] ?? "")")
            }
            if let path = ProcessInfo.processInfo.environment["GUI_SCREENSHOT"] {
                try await Chromium.screenshot(gui + "/", to: path, budgetMs: 1_500)
            }

            // 2. SIGKILL n2: it expires, its symbols get new holders with higher tokens.
            let before = try #require(await view(gui))
            let heldByN2 = before.symbols.filter { $0.authority?.node == "n2" }
            let tokensBefore = Dictionary(uniqueKeysWithValues: before.symbols.map { ($0.symbol, $0.authority?.fencingToken ?? 0) })
            await processes[.node(2)]!.kill9()
            let failedOver = await eventually(timeout: .seconds(20), every: .milliseconds(200)) {
                guard let view = await view(gui) else { return false }
                let n2Gone = view.members.first { $0.node == "n2" }.map { $0.status != .alive } ?? true
                let moved = heldByN2.allSatisfy { old in
                    guard let now = view.symbols.first(where: { $0.symbol == old.symbol }) else { return false }
                    return now.authority.map { $0.node != "n2" } == true && now.quote?.node != "n2" && now.quote != nil
                }
                return n2Gone && moved
            }
            if !failedOver { Issue.record("n2's symbols \(heldByN2.map(\.symbol)) never moved: \(String(describing: await view(gui)))") }
            try #require(failedOver)
            let afterKill = try await Chromium.dumpDOM(gui + "/", budgetMs: 1_500)
            #expect(memberRows(afterKill)["n2"].map { $0["data-status"] != "alive" } ?? true, "n2 still shown alive")
            let rowsAfter = symbolRows(afterKill)
            for old in heldByN2 {
                let row = rowsAfter[old.symbol]
                #expect(row?["data-holder"].map { !$0.isEmpty && $0 != "n2" } == true, "\(old.symbol) holder on the page: \(row?["data-holder"] ?? "none")")
                #expect((row?["data-token"]).flatMap { Int64($0) }.map { $0 > tokensBefore[old.symbol]! } == true, "\(old.symbol): a new holder has a higher fencing token")
            }
            let events = DOM.elements("li", in: afterKill).filter { $0["data-event-kind"] != nil }
            #expect(events.contains { $0["data-event-kind"] == "expire" && $0["data-node"] == "n2" }, "no expiry of n2 in the timeline: \(events.map { ($0["data-event-kind"] ?? "", $0["data-node"] ?? "") })")
            if !heldByN2.isEmpty {
                #expect(events.contains { $0["data-event-kind"] == "grant" && heldByN2.map(\.symbol).contains($0["data-symbol"] ?? "") })
            }
            // The charts: price sparklines with points, and in the authority timeline each of
            // n2's symbols first held by n2, then by another node, with a failover marker.
            let svgs = DOM.elements("svg", in: afterKill)
            let sparkPoints = DOM.elements("path", in: afterKill).filter { $0["data-series"] == "reference" }.compactMap { $0["data-points"].flatMap { Int($0) } }
            #expect(sparkPoints.count >= symbols.count && sparkPoints.allSatisfy { $0 > 1 }, "reference lines: \(sparkPoints)")
            let timeline = try #require(svgs.first { $0["id"] == "chart-authority" }).innerHTML
            let bars = DOM.elements("rect", in: timeline)
            let markers = DOM.elements("g", in: timeline).filter { $0["data-failover"] != nil }
            for old in heldByN2 {
                let holders = bars.filter { $0["data-symbol"] == old.symbol }.compactMap { $0["data-holder"] }.filter { !$0.isEmpty }
                #expect(holders.contains("n2") && holders.last != "n2", "\(old.symbol) holders in the timeline: \(holders)")
                #expect(markers.contains { $0["data-failover"] == old.symbol && $0["data-from-node"] == "n2" && $0["data-to-node"] != "n2" },
                        "\(old.symbol): no failover marker from n2: \(markers.map(\.attributes))")
            }
            if let path = ProcessInfo.processInfo.environment["GUI_SCREENSHOT_FAILOVER"] {
                try await Chromium.screenshot(gui + "/", to: path, budgetMs: 4_000, size: "1400,1800")
            }

            // 3. n2 comes back: alive again on the page, its join in the timeline.
            processes[.node(2)] = try await cluster.start(.node(2))
            let rejoined = await eventually(timeout: .seconds(20), every: .milliseconds(200)) {
                await view(gui)?.members.first { $0.node == "n2" }?.status == .alive
            }
            try #require(rejoined, "n2 never rejoined")
            let afterReturn = try await Chromium.dumpDOM(gui + "/", budgetMs: 1_500)
            #expect(memberRows(afterReturn)["n2"]?["data-status"] == "alive")
            let joins = DOM.elements("li", in: afterReturn).filter { $0["data-event-kind"] == "join" && $0["data-node"] == "n2" }
            #expect(!joins.isEmpty, "n2's return is not in the timeline")
        } catch {
            for process in processes.values { await process.stop(grace: .seconds(3)) }
            throw error
        }
        for process in processes.values.reversed() { await process.stop(grace: .seconds(3)) }
    }
}
