import ArgumentParser
import Foundation
import MMCommandLine
import MMCore
import Testing

/// `--config`, else `$MMCTL_CONFIG`, else `./etc/mmctl.yaml` when present, else built-ins.
@Suite struct ConfigDiscoveryTests {
    /// A scratch working directory, optionally with etc/mmctl.yaml.
    func workingDirectory(withConventionalFile: Bool) throws -> String {
        let path = NSTemporaryDirectory() + "mm-discovery-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path + "/etc", withIntermediateDirectories: true)
        if withConventionalFile { try "seed: 1\n".write(toFile: path + "/etc/mmctl.yaml", atomically: true, encoding: .utf8) }
        return path
    }

    @Test func flagBeatsEnvironmentBeatsWorkingDirectoryBeatsBuiltIns() throws {
        let cwd = try workingDirectory(withConventionalFile: true)
        defer { try? FileManager.default.removeItem(atPath: cwd) }
        let env = [ConfigDiscovery.environmentVariable: "/srv/env.yaml"]

        let flag = ConfigDiscovery.resolve(flag: "mine.yaml", environment: env, currentDirectory: cwd)
        #expect(flag.path == cwd + "/mine.yaml" && flag.origin == .flag)

        let fromEnvironment = ConfigDiscovery.resolve(flag: nil, environment: env, currentDirectory: cwd)
        #expect(fromEnvironment.path == "/srv/env.yaml" && fromEnvironment.origin == .environment)

        let conventional = ConfigDiscovery.resolve(flag: nil, environment: [:], currentDirectory: cwd)
        #expect(conventional.path == cwd + "/etc/mmctl.yaml" && conventional.origin == .workingDirectory)

        // An empty MMCTL_CONFIG counts as unset.
        let empty = ConfigDiscovery.resolve(flag: nil, environment: [ConfigDiscovery.environmentVariable: ""], currentDirectory: cwd)
        #expect(empty.origin == .workingDirectory)
    }

    @Test func aMissingDiscoveredFileIsNamedAfterWhereItCameFrom() {
        let missing = ConfigError(key: "--config", reason: "names '/nope.yaml', which does not exist or cannot be read")
        #expect(ConfigDiscovery.attributed(missing, to: .environment).key == "MMCTL_CONFIG")
        #expect(ConfigDiscovery.attributed(missing, to: .flag).key == "--config")
        let other = ConfigError(key: "seed", reason: "must be an integer")
        #expect(ConfigDiscovery.attributed(other, to: .environment) == other)
    }

    @Test func withoutAFileTheBuiltInsAreUsed() throws {
        let cwd = try workingDirectory(withConventionalFile: false)
        defer { try? FileManager.default.removeItem(atPath: cwd) }
        let resolved = ConfigDiscovery.resolve(flag: nil, environment: [:], currentDirectory: cwd)
        #expect(resolved.path == nil && resolved.origin == .builtIn)
    }
}

@Suite struct OutputOptionsTests {
    @Test(arguments: [
        ([], OutputFormat.text), (["-o", "json"], .json), (["--output", "text"], .text), (["--json"], .json), (["-o", "json", "--json"], .json),
    ] as [([String], OutputFormat)])
    func formats(arguments: [String], expected: OutputFormat) throws {
        #expect(try OutputOptions.parse(arguments).format == expected)
    }

    @Test func contradictionsAndUnknownFormatsAreUsageErrors() {
        #expect(throws: (any Error).self) { try OutputOptions.parse(["--json", "-o", "text"]) }
        #expect(throws: (any Error).self) { try OutputOptions.parse(["-o", "yaml"]) }
    }
}

/// Money as the dashboard shows it: ticks × tick size by integer arithmetic.
@Suite struct PriceFormatTests {
    @Test(arguments: [
        (10_005, "0.01", "100.05"), (10_000, "0.01", "100.00"), (5, "0.01", "0.05"), (-5, "0.01", "-0.05"), (0, "0.01", "0.00"),
        (801, "0.05", "40.05"), (123_456_789, "0.01", "1,234,567.89"), (-123_456, "1", "-123,456"), (7, "0.001", "0.007"),
        (3, "2.5", "7.5"), (Int64.max, "0.01", "92,233,720,368,547,758.07"), (Int64.min, "1", "-9,223,372,036,854,775,808"),
        // Not representable: raw ticks, never a rounded float.
        (Int64.max, "0.05", "9223372036854775807 ticks"), (12, "abc", "12 ticks"), (12, "0.", "12 ticks"), (12, "-0.01", "12 ticks"),
    ] as [(Int64, String, String)])
    func money(ticks: Int64, tickSize: String, expected: String) {
        #expect(PriceFormat.money(ticks, tickSize: tickSize) == expected)
    }

    @Test func sumsAtTheFinestScale() {
        #expect(PriceFormat.sum([(10, "0.01"), (-5, "0.05")]) == "-0.15")
        #expect(PriceFormat.sum([(1, "0.1"), (1, "0.001")]) == "0.101")
        #expect(PriceFormat.sum([]) == "0")
        #expect(PriceFormat.sum([(1, "x")]) == nil)
        #expect(PriceFormat.sum([(Int64.max, "0.01"), (1, "0.01")]) == nil)
    }

    /// Every price in 0...10^6 ticks at a 0.01 tick reads back exactly.
    @Test func roundTripsExactly() {
        for ticks in stride(from: Int64(0), through: 1_000_000, by: 7) {
            let text = PriceFormat.money(ticks, tickSize: "0.01").replacingOccurrences(of: ",", with: "").replacingOccurrences(of: ".", with: "")
            #expect(Int64(text) == ticks)
        }
    }
}

@Suite struct EventViewTests {
    let events = [
        ClusterEvent(seq: 1, tsMs: 1_000, kind: "join", node: "n1", detail: ""),
        ClusterEvent(seq: 2, tsMs: 2_000, kind: "grant", symbol: "ACME", node: "n1", fencingToken: 3, detail: "granted for 2000 ms"),
        ClusterEvent(seq: 3, tsMs: 3_000, kind: "grant", symbol: "BOLT", node: "n2", fencingToken: 4, detail: ""),
    ]

    @Test func filtersCombine() {
        #expect(events.filter(EventFilter().matches).map(\.seq) == [1, 2, 3])
        #expect(events.filter(EventFilter(sinceMs: 2_000).matches).map(\.seq) == [2, 3])
        #expect(events.filter(EventFilter(symbols: ["ACME"]).matches).map(\.seq) == [2])
        #expect(events.filter(EventFilter(nodes: ["n1"]).matches).map(\.seq) == [1, 2])
        #expect(events.filter(EventFilter(symbols: ["ACME", "BOLT"], nodes: ["n2"]).matches).map(\.seq) == [3])
    }

    @Test func textAndJSONLines() throws {
        let text = EventFormat.text(events[1])
        #expect(text.hasPrefix("#2 "))
        #expect(text.contains("grant") && text.contains("ACME") && text.contains("n1") && text.contains("token=3") && text.hasSuffix("granted for 2000 ms"))
        let json = try EventFormat.json(events[1])
        #expect(!json.contains("\n"))
        #expect(try MMJSON.decode(ClusterEvent.self, from: Data(json.utf8)) == events[1])
    }

    @Test func statusLimitedToSymbols() {
        func symbol(_ name: String, pnl: Int64) -> ClusterSnapshot.SymbolView {
            .init(symbol: name, tickSize: "0.01", referencePrice: 100, assignedTo: "n1", authority: nil, quote: nil,
                  position: .init(netQty: 1, avgPrice: 100, realizedPnl: pnl, unrealizedPnl: pnl, fillCount: 2))
        }
        let snapshot = ClusterSnapshot(
            takenAtMs: 0, supervisor: nil, processes: [], members: [], assignments: .init(version: 3, symbols: ["ACME": "n1", "BOLT": "n2"]),
            symbols: [symbol("ACME", pnl: 5), symbol("BOLT", pnl: 7)], totals: .init(realizedPnl: 12, unrealizedPnl: 12, fillCount: 4),
            recentFills: [], recentEvents: events, errors: [])
        let view = snapshot.limited(to: ["BOLT"])
        #expect(view.symbols.map(\.symbol) == ["BOLT"])
        #expect(view.assignments?.symbols == ["BOLT": "n2"])
        #expect(view.totals == .init(realizedPnl: 7, unrealizedPnl: 7, fillCount: 2))
        #expect(view.recentEvents.map(\.seq) == [1, 3], "events about other symbols go; those about none stay")
    }
}
