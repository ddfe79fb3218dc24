import Foundation
import MMCore
import Testing

/// MM_* variables: a misspelt one is an error naming the nearest real one, never ignored.
@Suite struct ConfigEnvironmentTests {
    @Test(arguments: [
        ("MM_NODE_COUNT", "MM_NODES_COUNT"),
        ("MM_LISTEN_PORTBASE", "MM_LISTEN_PORT_BASE"),
        ("MM_COORDINATOR_GRANT_TTL", "MM_COORDINATOR_GRANT_TTL_MS"),
        ("MM_SED", "MM_SEED"),
    ])
    func anUnknownVariableSuggestsTheNearest(variable: String, suggestion: String) async {
        do {
            _ = try await ClusterConfig.load(path: nil, environment: [variable: "5"])
            Issue.record("\(variable) must be refused")
        } catch {
            #expect(error.key == variable)
            #expect(error.description.contains("did you mean \(suggestion)?"), "\(error)")
        }
    }

    @Test func realVariablesAndOtherPrefixesPass() async throws {
        let config = try await ClusterConfig.load(path: nil, environment: [
            "MM_NODES_COUNT": "5", "MM_SYMBOLS_ACME_BASE_PRICE": "12000", "MMCTL_DATA_DIR": "/x", "MMD_BINARY": "/y", "MMTEST_RECORD_GOLDEN": "0", "HOME": "/root",
        ])
        #expect(config.nodeCount == 5)
        #expect(config.symbol("ACME")?.basePrice == 12_000)
    }

    @Test func aSymbolVariableMustNameAConfiguredSymbol() async {
        await #expect(throws: ConfigError.self) { try await ClusterConfig.load(path: nil, environment: ["MM_SYMBOLS_NOPE_BASE_PRICE": "5000"]) }
    }

    /// No MM_* variable the repository itself reads may be mistaken for a config key.
    @Test func theRepositoryReadsNoOtherMMVariable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        let known = Set(ClusterConfig.knownKeys.map(ClusterConfig.environmentVariable(for:)))
        var offenders: [String] = []
        for directory in ["Sources", "Tests", "Scripts"] {
            let enumerator = FileManager.default.enumerator(atPath: root.appendingPathComponent(directory).path)
            while let file = enumerator?.nextObject() as? String {
                let path = root.appendingPathComponent(directory).appendingPathComponent(file).path
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                let regex = try Regex(#""(MM_[A-Z0-9_]+)""#)
                for match in text.matches(of: regex) {
                    let name = String(text[match.range].dropFirst().dropLast())
                    if name == "MM_" || known.contains(name) || name.hasPrefix("MM_SYMBOLS_") || name.hasPrefix("MM_HOSTS_") || name.hasPrefix("MM_PLACEMENT_") { continue }
                    // Test inputs that exist to be refused.
                    if file.hasSuffix("ConfigEnvironmentTests.swift") || file.hasSuffix("MMCTLPolishTests.swift") { continue }
                    offenders.append("\(directory)/\(file): \(name)")
                }
            }
        }
        #expect(offenders.isEmpty, "variables read with the MM_ prefix that are not config keys: \(offenders)")
    }

    /// `--set symbols.names=ACME,BOLT` over the shipped etc/mmctl.yaml (which configures every
    /// default symbol) is a subset, not a mistake; a file that lists names itself is still checked.
    @Test func aSymbolSubsetFromOutsideTheFileIsNotAnError() async throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../etc/mmctl.yaml").standardized.path
        let config = try await ClusterConfig.load(path: shipped, environment: [:], overrides: ["symbols.names": "ACME,BOLT"])
        #expect(config.symbolNames == ["ACME", "BOLT"])
        let viaEnvironment = try await ClusterConfig.load(path: shipped, environment: ["MM_SYMBOLS_NAMES": "CRUX"])
        #expect(viaEnvironment.symbolNames == ["CRUX"])
    }

    /// `knownKeys` is `orderedKeys` as a set: one list, each key in it once.
    @Test func orderedKeysListEachKeyOnce() {
        #expect(Set(ClusterConfig.orderedKeys).count == ClusterConfig.orderedKeys.count)
    }

    @Test func explainNamesTheSourceOfEveryValue() async throws {
        let path = NSTemporaryDirectory() + "mm-explain-\(UUID().uuidString).yaml"
        try "seed: 7\nnodes:\n  count: 4\nquoting:\n  spread_ticks: 6\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (config, origins) = try await ClusterConfig.explain(
            path: path, environment: ["MM_NODES_COUNT": "5", "MM_FLOW_MAX_QTY": "3"], overrides: ["seed": "9"])
        let byKey = Dictionary(uniqueKeysWithValues: origins.map { ($0.key, $0) })
        #expect(byKey["seed"]?.value == "9" && byKey["seed"]?.source == .override)
        #expect(byKey["nodes.count"]?.value == "5" && byKey["nodes.count"]?.source == .environment("MM_NODES_COUNT"))
        #expect(byKey["flow.max_qty"]?.source == .environment("MM_FLOW_MAX_QTY"))
        #expect(byKey["quoting.spread_ticks"]?.value == "6" && byKey["quoting.spread_ticks"]?.source == .file(path))
        #expect(byKey["listen.port_base"]?.value == "7400" && byKey["listen.port_base"]?.source == .builtIn)
        #expect(byKey["symbols.ACME.tick_size"]?.value == "0.01")
        #expect(byKey["symbols.names"]?.value == config.symbolNames.joined(separator: ","))
        #expect(origins.count == ClusterConfig.knownKeys.count + 3 * config.symbols.count)
    }
}
