import Foundation
import Hummingbird
import HummingbirdTesting
import MMCore
import MMServiceKit
import Testing
@testable import OperatorGUI

/// The dashboard on a multi-host cluster: each process names its host, a host whose
/// supervisor does not answer is a banner and unreachable rows, a skewed clock is a banner.
@Suite(.serialized) struct MultiHostBrowserTests {
    static func multiHostSnapshot() -> ClusterSnapshot {
        var snapshot = Fixtures.snapshot(errors: [
            .init(service: "supervisor", error: "host b (10.0.0.2): GET /v1/processes: unreachable: connection refused", host: "b"),
        ])
        snapshot.processes = [
            ProcessStatus(name: "coordinator", role: "coordinator", pid: 101, state: .running, restarts: 0, uptimeMs: 120_000, port: 7401, lastExit: nil, host: "a"),
            ProcessStatus(name: "n2", role: "node", pid: nil, state: .unreachable, restarts: 0, uptimeMs: nil, port: 7412, lastExit: nil, host: "b"),
            ProcessStatus(name: "n3", role: "node", pid: 303, state: .running, restarts: 0, uptimeMs: 9_000, port: 7413, lastExit: nil, host: "c"),
        ]
        snapshot.hosts = [
            .init(name: "a", address: "10.0.0.1", reachable: true, clockOffsetMs: 1, clockUncertaintyMs: 1),
            .init(name: "b", address: "10.0.0.2", reachable: false, clockError: "GET /v1/info: connection refused"),
            .init(name: "c", address: "10.0.0.3", reachable: true, clockOffsetMs: 812, clockUncertaintyMs: 3, clockSkewed: true),
        ]
        snapshot.warnings = [
            .init(kind: ClusterSnapshot.Warning.clockSkew, hosts: ["c"],
                  message: "clock of host c (10.0.0.3) is 812 ms ahead of this machine's (±3 ms); grants are judged safely only within 200 ms (node.safety_margin_ms): fix its time sync (NTP)",
                  offsetMs: 812, uncertaintyMs: 3, boundMs: 200),
        ]
        return snapshot
    }

    func rows(_ dom: String, _ key: String) -> [String: DOMElement] {
        Dictionary(DOM.elements("tr", in: dom).compactMap { row in row[key].map { ($0, row) } }, uniquingKeysWith: { first, _ in first })
    }

    @Test func hostsUnreachableRowsAndClockSkewAreOnThePage() async throws {
        let harness = try Fixtures.Harness(Self.multiHostSnapshot())
        await harness.refresher.refreshOnce()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 2_000)
            let processes = rows(dom, "data-process")
            #expect(processes["coordinator"]?["data-host"] == "a")
            #expect(processes["coordinator"]?.text.contains("on a (10.0.0.1)") == true)
            let n2 = try #require(processes["n2"])
            #expect(n2["data-host"] == "b" && n2["data-state"] == "unreachable" && n2["class"] == "alert")
            #expect(n2.text.contains("UNREACHABLE"), "unreachable in text, not only colour: \(n2.text)")

            let banners = DOM.elements("p", in: dom)
            let host = try #require(banners.first { $0["data-banner"] == "host-unreachable" })
            #expect(host["data-host"] == "b" && host.text.contains("10.0.0.2") && host.text.contains("connection refused"))
            #expect(!banners.contains { $0["data-banner"] == "service-error" && $0["data-service"] == "supervisor" }, "a host's supervisor is a host banner")
            let skew = try #require(banners.first { $0["data-banner"] == "clock-skew" })
            #expect(skew["data-host"] == "c" && skew.text.contains("812 ms ahead"))

            #expect(dom.contains("2 of 3 answer"), "the meta line counts hosts")
            #expect(dom.contains("c +812ms ±3ms ✖ SKEWED"))
            let summary = try #require(DOM.elements("span", in: dom).first { $0["id"] == "processes-summary" })
            #expect(summary.text.contains("host b unreachable"), "\(summary.text)")
        }
    }

    @Test func aSingleHostShowsNoHosts() async throws {
        var snapshot = Fixtures.snapshot()
        snapshot.hosts = [.init(name: "local", address: "127.0.0.1", reachable: true)]
        snapshot.processes = snapshot.processes.map { var p = $0; p.host = "local"; return p }
        let harness = try Fixtures.Harness(snapshot)
        await harness.refresher.refreshOnce()
        try await harness.application().test(.live) { client in
            let dom = try await Chromium.dumpDOM("http://127.0.0.1:\(client.port!)/", budgetMs: 1_500)
            let processes = rows(dom, "data-process")
            #expect(processes["coordinator"]?.text.contains("on local") == false)
            #expect(!dom.contains("Host clocks"))
            #expect(dom.contains("pid 4242"), "the single supervisor is named as before")
        }
    }

    /// `GET /v1/info`'s `now_ms` is the clock at the request, not at process start.
    @Test func infoNowMsIsReadPerRequest() throws {
        let clock = ManualClock(startMs: Fixtures.t0)
        let environment = try Fixtures.environment(clock: clock)
        #expect(environment.info.nowMs == Fixtures.t0)
        clock.advance(byMs: 1_234)
        #expect(environment.info.nowMs == Fixtures.t0 + 1_234)
        #expect(environment.info.startedAtMs == Fixtures.t0)
    }
}
