import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import Testing
@testable import OperatorGUI

@Suite struct RoutesTests {
    @Test func viewIsTheSnapshotDocumentAndNeedsNoToken() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/api/view", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                #expect(response.headers[.cacheControl] == "no-store")
                let body = Data(buffer: response.body)
                // Same document, same encoding as `mmctl status --json` (MMJSON, snake_case).
                #expect(try MMJSON.decode(ClusterSnapshot.self, from: body) == Fixtures.snapshot())
                let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
                #expect(object?["schema_version"] as? Int == ClusterSnapshot.currentSchemaVersion)
                #expect((object?["symbols"] as? [[String: Any]])?.first?["tick_size"] as? String == "0.01")
            }
        }
    }

    @Test func viewBeforeAnySnapshotIs503NamingTheCause() async throws {
        let harness = try Fixtures.Harness()
        harness.source.fail("coordinator: connection refused")
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/api/view", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let envelope = try MMJSON.decode(ErrorEnvelope.self, from: Data(buffer: response.body))
                #expect(envelope.error.code == GUIErrorCode.snapshotUnavailable)
                #expect(envelope.error.message.contains("connection refused"))
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok, "ready once a refresh was attempted: the page then explains the outage")
            }
        }
    }

    @Test func notReadyBeforeTheFirstRefresh() async throws {
        let harness = try Fixtures.Harness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
        }
    }

    @Test func dashboardFrameCarriesViewFreshnessQuotesAndTimeline() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        harness.clock.advance(byMs: 300)
        harness.source.set(Fixtures.snapshot(takenAt: Fixtures.t0 + 300, acmeQuote: Fixtures.quote("n1", token: 7, bid: 10_004, ask: 10_008, at: Fixtures.t0 + 250)))
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/api/dashboard?quotes=10", method: .get) { response in
                #expect(response.status == .ok)
                let frame = try MMJSON.decode(DashboardFrame.self, from: Data(buffer: response.body))
                #expect(frame.version == 2)
                #expect(frame.refresh.stale == false)
                #expect(frame.refresh.intervalMs == 300)
                #expect(frame.cluster.grantTtlMs == Fixtures.config.coordinator.grantTtlMs)
                #expect(frame.view?.symbols.map(\.symbol) == ["ACME", "BOLT", "EVOK"])
                #expect(frame.quoteUpdates.first?.change == .replaced)
                #expect(frame.quoteUpdates.first?.bid == 10_004)
                #expect(frame.timeline.map(\.kind) == ["expire", "rebalance", "exit"])
            }
            try await client.execute(uri: "/api/dashboard?quotes=lots", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func staleViewIsFlaggedOnceRefreshesStopSucceeding() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        harness.source.fail("exchange: timed out")
        harness.clock.advance(byMs: harness.store.staleAfterMs + 1)
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/api/dashboard", method: .get) { response in
                let frame = try MMJSON.decode(DashboardFrame.self, from: Data(buffer: response.body))
                #expect(frame.refresh.stale)
                #expect(frame.refresh.lastError == "exchange: timed out")
                #expect(frame.view != nil, "the last good view is still shown, marked stale")
            }
        }
    }

    @Test func quoteUpdatesRouteFiltersAndValidates() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        harness.source.set(Fixtures.snapshot(acmeQuote: nil))
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/api/quote-updates?symbol=ACME&limit=5", method: .get) { response in
                #expect(response.status == .ok)
                let page = try MMJSON.decode(QuoteUpdatePage.self, from: Data(buffer: response.body))
                #expect(page.updates.map(\.change) == [.withdrawn, .current])
                #expect(page.updates.allSatisfy { $0.symbol == "ACME" })
            }
            try await client.execute(uri: "/api/quote-updates?symbol=NOPE", method: .get) { response in
                #expect(response.status == .notFound)
                let envelope = try MMJSON.decode(ErrorEnvelope.self, from: Data(buffer: response.body))
                #expect(envelope.error.code == "unknown_symbol")
            }
            try await client.execute(uri: "/api/quote-updates?limit=-1", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test(arguments: [
        ("/", "text/html; charset=utf-8", "<table id=\"symbols\""),
        ("/app.js", "text/javascript; charset=utf-8", "function formatTicks"),
        ("/app.css", "text/css; charset=utf-8", ".grid .num"),
    ])
    func pageAssetsAreServedSelfContained(path: String, contentType: String, marker: String) async throws {
        let harness = try Fixtures.Harness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == contentType)
                #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
                let text = String(buffer: response.body)
                #expect(text.contains(marker))
                // Works offline: nothing is fetched from anywhere but this origin.
                #expect(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"))
            }
        }
    }

    @Test func theScriptOnlyEverIssuesGets() {
        let script = DashboardAssets.script
        #expect(script.contains("fetch('/api/dashboard"))
        for forbidden in ["method:", "POST", "PUT", "DELETE", "XMLHttpRequest", "sendBeacon", "WebSocket"] {
            #expect(!script.contains(forbidden), "app.js must not contain \(forbidden)")
        }
        #expect(!DashboardAssets.html.contains("<form"), "no controls that could change anything")
    }

    @Test(arguments: GUIRoutes.all)
    func everyDashboardRouteRefusesMutatingMethods(path: String) async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        try await harness.application().test(.router) { client in
            for method in [HTTPRequest.Method.post, .put, .delete] {
                try await client.execute(uri: path, method: method, body: ByteBuffer(string: "{}")) { response in
                    #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                    let envelope = try MMJSON.decode(ErrorEnvelope.self, from: Data(buffer: response.body))
                    #expect(envelope.error.code == "method_not_allowed")
                }
            }
        }
    }

    @Test(arguments: [
        ("127.0.0.1:7404", true), ("localhost:7404", true), ("LOCALHOST", true), ("[::1]:7404", true), ("127.0.0.1", true),
        ("evil.example:7404", false), ("127.0.0.1.evil.example", false), ("192.168.1.20:7404", false), ("localhost.evil.example:80", false),
    ])
    func hostHeaderGuardsAgainstDNSRebinding(host: String, allowed: Bool) throws {
        let guardian = HostGuard(listenHost: "127.0.0.1")
        let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: host, path: "/api/view"), body: RequestBody(buffer: ByteBuffer()))
        if allowed {
            try guardian.check(request)
        } else {
            let error = #expect(throws: APIError.self) { try guardian.check(request) }
            #expect(error?.code == GUIErrorCode.hostNotAllowed)
            #expect(error?.status == 403)
        }
    }

    @Test func aRebindingRequestIsRefusedOverHTTP() async throws {
        let harness = try Fixtures.Harness()
        await harness.refresher.refreshOnce()
        // The router test client addresses requests to "localhost": allowed.
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/api/view", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
        // A server configured for another host still accepts loopback names only plus that host.
        #expect(HostGuard(listenHost: "10.0.0.5").allowed.contains("10.0.0.5"))
        #expect(!HostGuard(listenHost: "127.0.0.1").allowed.contains("10.0.0.5"))
    }

    @Test func commonRoutesStayTokenProtected() async throws {
        let harness = try Fixtures.Harness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/v1/info", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/info", method: .get, headers: [.authorization: "Bearer token-observer"]) { response in
                #expect(response.status == .ok)
                let info = try MMJSON.decode(ServiceInfo.self, from: Data(buffer: response.body))
                #expect(info.name == "gui")
            }
        }
    }
}
