import Foundation
import MMCore
import MMServiceKit
import MMTestSupport
import Testing

/// `/metrics` of every process of a live cluster, as Prometheus and promtool see it.
@Suite(.serialized) struct MetricsTests {
    /// Every process with an HTTP port, the supervisor included, by name.
    static func endpoints(_ cluster: CLICluster) async throws -> [(name: String, url: String)] {
        let snapshot = try await cluster.snapshot()
        return [("supervisor", "http://127.0.0.1:\(cluster.portBase)/metrics")]
            + snapshot.processes.map { ($0.name, "http://127.0.0.1:\($0.port)/metrics") }
    }

    static func scrape(_ url: String) async throws -> String {
        let response = try await AHCTransport.shared.send(TransportRequest(method: .GET, url: url, timeoutMs: 5_000))
        #expect(response.status == 200, "\(url)")
        return String(decoding: response.body, as: UTF8.self)
    }

    /// The sum of every sample of `family` (all label sets) in a Prometheus text page.
    static func sum(_ family: String, in page: String) -> Double {
        page.split(separator: "\n").reduce(0) { total, line in
            guard line.hasPrefix(family + "{") || line.hasPrefix(family + " "), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else {
                return total
            }
            return total + value
        }
    }

    /// The value of one exact series (`name{labels}`), if the page has it.
    static func sample(_ series: String, in page: String) -> Double? {
        page.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    static func promtool(_ page: String) async throws -> CLIResult {
        let file = NSTemporaryDirectory() + "mm-metrics-\(UUID().uuidString).txt"
        try page.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await runCommand("/bin/sh", ["-c", "promtool check metrics < '\(file)'"])
    }

    /// The families each kind of process must expose (beside the HTTP ones every service has).
    static let expectedFamilies: [String: [String]] = [
        "supervisor": ["mm_supervisor_process_up", "mm_supervisor_process_state", "mm_supervisor_process_restarts_total"],
        "exchange": [
            "mm_exchange_fills_total", "mm_exchange_quotes_replaced_total", "mm_exchange_unquoted_seconds_total", "mm_exchange_no_quote_seconds_total",
            "mm_exchange_journal_commit_seconds_bucket", "mm_exchange_fencing_rejections_total", "mm_exchange_deadman_firings_total",
            "mm_exchange_fill_seq", "mm_exchange_stale_accepted",
        ],
        "coordinator": ["mm_coordinator_events_total", "mm_coordinator_grant_renewals_total", "mm_coordinator_failovers_total"],
        "state": ["mm_state_fills_recorded_total", "mm_state_ingest_lag_seqs", "mm_state_ingest_cursor_seq", "mm_state_commit_seconds_bucket", "mm_state_ingesting"],
        "n1": ["mm_node_quotes_sent_total", "mm_node_grants_acquired_total", "mm_node_grants_held"],
        "gui": ["mm_http_requests_total", "mm_http_request_duration_seconds_bucket"],
    ]

    @Test func everyProcessExposesItsDomainMetricsAndPassesPromtool() async throws {
        let cluster = CLICluster("metrics", settings: ["flow.interval_ms": "20", "flow.cross_pct": "80"])
        defer { cluster.forceCleanup() }
        #expect(try await cluster.start(nodes: 2).code == 0)
        let exchangeURL = "http://127.0.0.1:\(cluster.portBase + 3)/metrics"
        let traded = await eventually(timeout: .seconds(20)) { Self.sum("mm_exchange_fills_total", in: (try? await Self.scrape(exchangeURL)) ?? "") > 0 }
        #expect(traded, "no fill counted by the exchange")
        // The ledger catches up and counts the same fills.
        let stateURL = "http://127.0.0.1:\(cluster.portBase + 2)/metrics"
        #expect(await eventually(timeout: .seconds(10)) { Self.sum("mm_state_fills_recorded_total", in: (try? await Self.scrape(stateURL)) ?? "") > 0 })

        for (name, url) in try await Self.endpoints(cluster) {
            let page = try await Self.scrape(url)
            let lint = try await Self.promtool(page)
            #expect(lint.code == 0, "promtool on \(name): \(lint.stdout)\(lint.stderr)")
            for family in Self.expectedFamilies[name] ?? [] {
                #expect(page.contains("\n\(family){") || page.contains("\n\(family) "), "\(name) lacks \(family)")
            }
            // Every family has its HELP line (promtool says so too; this names the family).
            for line in page.split(separator: "\n") where line.hasPrefix("# TYPE ") {
                let family = line.split(separator: " ")[2]
                #expect(page.contains("# HELP \(family) "), "\(name): \(family) has no HELP")
            }
        }

        // The grants and the holder's quotes are visible in the numbers.
        let coordinator = try await Self.scrape("http://127.0.0.1:\(cluster.portBase + 1)/metrics")
        #expect((Self.sample(#"mm_coordinator_events_total{kind="grant"}"#, in: coordinator) ?? 0) > 0, "no grant counted")
        let node = try await Self.scrape("http://127.0.0.1:\(cluster.portBase + 11)/metrics")
        #expect(Self.sum("mm_node_quotes_sent_total", in: node) > 0)

        // A kill shows up as a restart and a death event.
        #expect(try await cluster.mmctl(["kill-node", "n1"]).code == 0)
        let supervisorURL = "http://127.0.0.1:\(cluster.portBase)/metrics"
        let restarted = await eventually(timeout: .seconds(10)) {
            let page = (try? await Self.scrape(supervisorURL)) ?? ""
            return page.contains(#"mm_supervisor_process_restarts_total{process="n1"} 1"#) && page.contains(#"mm_supervisor_process_up{process="n1"} 1"#)
        }
        #expect(restarted, "the supervisor's metrics do not show n1's restart")
        // Its symbols were revoked on the death notice and granted to n2: a failover, not a handover.
        let coordinatorURL = "http://127.0.0.1:\(cluster.portBase + 1)/metrics"
        let failedOver = await eventually(timeout: .seconds(10)) {
            let page = (try? await Self.scrape(coordinatorURL)) ?? ""
            return (Self.sample("mm_coordinator_failovers_total", in: page) ?? 0) > 0 && (Self.sample(#"mm_coordinator_events_total{kind="revoke"}"#, in: page) ?? 0) > 0
        }
        #expect(failedOver, "no failover counted after kill -9 of n1")
        #expect(try await cluster.stop().code == 0)
    }

    /// etc/prometheus.yml, moved to this test's ports, scraped by Debian's Prometheus: every
    /// target up and the fill counter rising.
    @Test func prometheusScrapesEveryTargetAndSeesFillsRise() async throws {
        let cluster = CLICluster("prometheus", settings: ["flow.interval_ms": "20", "flow.cross_pct": "80"])
        defer { cluster.forceCleanup() }
        #expect(try await cluster.start(nodes: 3).code == 0)

        // The committed config, with each default port moved by the same offset and a 1 s scrape.
        let template = try String(contentsOfFile: TestPaths.repositoryRoot + "/etc/prometheus.yml", encoding: .utf8)
        let shifted = template
            .replacing(/127\.0\.0\.1:(\d+)/) { match in "127.0.0.1:\(Int(match.1)! - 7400 + cluster.portBase)" }
            .replacingOccurrences(of: "scrape_interval: 5s", with: "scrape_interval: 1s")
            .replacingOccurrences(of: "scrape_timeout: 4s", with: "scrape_timeout: 900ms")
        let directory = NSTemporaryDirectory() + "mm-prometheus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try shifted.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let check = try await runCommand("/usr/bin/promtool", ["check", "config", directory + "/prometheus.yml"])
        #expect(check.code == 0, "\(check.stdout)\(check.stderr)")

        let port = cluster.portBase + 70
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = [
            "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ]
        let log = FileHandle(forWritingAtPath: "/dev/null")
        prometheus.standardOutput = log
        prometheus.standardError = log
        try prometheus.run()
        defer {
            prometheus.terminate()
            prometheus.waitUntilExit()
        }

        func api(_ path: String) async -> [String: Any]? {
            guard let response = try? await AHCTransport.shared.send(TransportRequest(method: .GET, url: "http://127.0.0.1:\(port)\(path)", timeoutMs: 2_000)),
                  response.status == 200 else { return nil }
            return (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        }
        var health: [String: String] = [:]
        let allUp = await eventually(timeout: .seconds(30), every: .milliseconds(500)) {
            guard let body = await api("/api/v1/targets"), let data = body["data"] as? [String: Any],
                  let targets = data["activeTargets"] as? [[String: Any]] else { return false }
            health = Dictionary(targets.map { (($0["scrapeUrl"] as? String) ?? "?", ($0["health"] as? String) ?? "?") }, uniquingKeysWith: { $1 })
            return targets.count == 8 && health.values.allSatisfy { $0 == "up" }
        }
        #expect(allUp, "targets: \(health)")

        func fills() async -> Double? {
            guard let body = await api("/api/v1/query?query=sum(mm_exchange_fills_total)"), let data = body["data"] as? [String: Any],
                  let result = (data["result"] as? [[String: Any]])?.first, let value = result["value"] as? [Any],
                  let text = value.last as? String else { return nil }
            return Double(text)
        }
        let first = await eventually(timeout: .seconds(15)) { (await fills() ?? 0) > 0 }
        #expect(first, "Prometheus never saw a fill")
        let before = await fills() ?? 0
        let rising = await eventually(timeout: .seconds(15), every: .milliseconds(500)) { (await fills() ?? 0) > before }
        #expect(rising, "the fill counter stayed at \(before)")
        #expect(try await cluster.stop().code == 0)
    }
}
