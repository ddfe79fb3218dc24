import Foundation
import MMCore
import Testing

@Suite struct ConfigTests {
    func write(_ yaml: String) throws -> String {
        let path = NSTemporaryDirectory() + "mm-config-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func embeddedDefaultsAreValid() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [:])
        #expect(config == ClusterConfig.defaults)
        #expect(config.symbols.count >= 6)
        #expect(config.nodeCount == 3)
        #expect(config.listen.host == "127.0.0.1")
    }

    @Test func shippedConfigFileIsValidAndMatchesDefaults() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../etc/mmctl.yaml").standardized.path
        let config = try await ClusterConfig.load(path: path, environment: [:])
        #expect(config == ClusterConfig.defaults, "etc/mmctl.yaml documents the embedded defaults; keep them equal")
    }

    @Test func fileEnvironmentAndOverridesLayerInOrder() async throws {
        let path = try write("""
            seed: 7
            coordinator:
              grant_ttl_ms: 3000
            nodes:
              count: 4
            symbols:
              names: [ACME, ZED]
              ZED:
                base_price: 4200
                tick_size: "0.05"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try await ClusterConfig.load(
            path: path, environment: ["MM_NODES_COUNT": "5", "MM_SEED": "8", "UNRELATED": "x"], overrides: ["seed": "9"])
        #expect(config.seed == 9)            // --set beats env beats file
        #expect(config.nodeCount == 5)       // env beats file
        #expect(config.coordinator.grantTtlMs == 3000)
        #expect(config.symbolNames == ["ACME", "ZED"])
        #expect(config.symbol("ZED") == SymbolSpec(symbol: "ZED", tickSize: "0.05", basePrice: 4200, lotSize: 100))
        #expect(config.symbol("ACME")?.basePrice == 10_000)
    }

    /// Each kind of bad file names the key and why, and nothing loads.
    @Test(arguments: [
        ("coordinator:\n  grant_ttl_ms: soon\n", "coordinator.grant_ttl_ms", "integer"),
        ("coordinater:\n  grant_ttl_ms: 3000\n", "coordinater.grant_ttl_ms", "not a known key"),
        ("nodes:\n  count: 0\n", "nodes.count", "1..."),
        ("symbols:\n  names: [ACME, ACME]\n", "symbols.names", "twice"),
        ("symbols:\n  names: [acme]\n", "symbols.names", "A–Z"),
        ("symbols:\n  names: [NEWCO]\n", "symbols.NEWCO.base_price", "required"),
        ("symbols:\n  names: [ACME]\n  BOLT:\n    base_price: 5\n", "symbols.BOLT.base_price", "not in symbols.names"),
        ("quoting:\n  spread_ticks: 0\n", "quoting.spread_ticks", "never crossed"),
        ("node:\n  renew_interval_ms: 1500\n", "node.renew_interval_ms", "half"),
        ("listen:\n  port_base: 80\n", "listen.port_base", "1024"),
        ("exchange:\n  snapshot:\n    every_records: 5\n", "exchange.snapshot.every_records", "100...100000000"),
        ("exchange:\n  snapshot:\n    keep: 0\n", "exchange.snapshot.keep", "1...100"),
        ("exchange:\n  journal:\n    retain: some\n", "exchange.journal.retain", "'all' or 'snapshots'"),
        ("exchange:\n  journal:\n    retain: snapshots\n  snapshot:\n    every_records: 0\n", "exchange.journal.retain", "every_records > 0"),
        ("- just\n- a list\n", "--config", "mapping"),
        ("seed: [unclosed\n", "--config", "YAML"),
    ])
    func badFileNamesTheKey(yaml: String, key: String, reason: String) async throws {
        let path = try write(yaml)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try await ClusterConfig.load(path: path, environment: [:])
            Issue.record("expected \(key) to be rejected")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.description.contains(path) || key == "--config")
        }
    }

    @Test func missingFileIsAnError() async {
        await #expect(throws: ConfigError.self) { try await ClusterConfig.load(path: "/nonexistent/mmctl.yaml", environment: [:]) }
    }

    @Test func badEnvironmentValueNamesTheKey() async {
        do {
            _ = try await ClusterConfig.load(path: nil, environment: ["MM_FLOW_CROSS_PCT": "lots"])
            Issue.record("a non-integer env override must be rejected")
        } catch {
            #expect(error.key == "flow.cross_pct")
        }
    }

    @Test func unknownOverrideIsRejected() async {
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [:], overrides: ["coordinator.grant_tll_ms": "5"])
            Issue.record("a misspelled --set must be rejected")
        } catch {
            #expect(error.description.contains("coordinator.grant_ttl_ms"), "suggests the right key: \(error)")
        }
    }

    @Test func portLayoutIsDerivedFromTheBase() {
        var config = ClusterConfig.defaults
        config.listen.portBase = 9000
        #expect(config.supervisorPort == 9000)
        #expect(config.port(of: .coordinator) == 9001)
        #expect(config.port(of: .state) == 9002)
        #expect(config.port(of: .exchange) == 9003)
        #expect(config.port(of: .gui) == 9004)
        #expect(config.port(of: .node(2)) == 9012)
        #expect(config.processes.map(\.name) == ["coordinator", "state", "exchange", "n1", "n2", "n3", "gui"])
    }

    @Test func digestChangesWithTheConfig() {
        var other = ClusterConfig.defaults
        other.seed += 1
        #expect(other.digest != ClusterConfig.defaults.digest)
        #expect(ClusterConfig.defaults.digest == ClusterConfig.defaults.digest)
    }
}
