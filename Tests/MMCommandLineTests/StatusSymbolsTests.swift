import Foundation
import MMCommandLine
import MMCore
import Testing

/// `mmctl status --symbols PATTERN --limit N --sort ORDER`: the glob, the selection shared
/// with positional names, the busiest-first order and the text view at 1,000 symbols.
@Suite struct SymbolPatternTests {
    @Test(arguments: [
        ("ACME", "ACME", true), ("ACME", "ACMEX", false), ("ACME", "ACM", false),
        ("A*", "ACME", true), ("A*", "A", true), ("A*", "BOLT", false), ("*", "ANY", true), ("*", "", true),
        ("*E", "ACME", true), ("*E", "EVOK", false), ("A*E", "ACME", true), ("A*E", "AE", true), ("A*E", "ACMEX", false),
        ("?", "A", true), ("?", "AB", false), ("??", "AB", true), ("A?ME", "ACME", true), ("A?ME", "AME", false),
        ("*C*", "ACME", true), ("*C*", "BOLT", false), ("**", "X", true), ("*?*", "", false), ("*?*", "Q", true),
        ("S0*1", "S0001", true), ("S0*1", "S0010", false), ("S?0?", "S101", true),
        // Case-sensitive: symbols are upper case, so a lower-case pattern matches nothing.
        ("a*", "ACME", false), ("acme", "ACME", false),
        // Backtracking: the last * has to give characters back more than once.
        ("*AB*AB", "XABYABAB", true), ("*AAB", "AAAAAAB", true), ("*AAB", "AAAAAA", false),
    ] as [(String, String, Bool)])
    func globs(pattern: String, name: String, expected: Bool) throws {
        #expect(try SymbolPattern(pattern).matches(name) == expected, "\(pattern) ~ \(name)")
    }

    @Test func literalsAndEmptyPatterns() throws {
        #expect(try SymbolPattern("ACME").isLiteral)
        #expect(try !SymbolPattern("A*").isLiteral && !SymbolPattern("A?").isLiteral)
        #expect(throws: SymbolSelectionError.self) { try SymbolPattern("") }
        #expect(throws: SymbolSelectionError.self) { try SymbolSelection(parsing: ["A*,"]) }
        #expect(throws: SymbolSelectionError.self) { try SymbolSelection(parsing: [",A*"]) }
    }

    /// A pathological pattern stays fast (no exponential backtracking).
    @Test func noExponentialBacktracking() throws {
        let pattern = try SymbolPattern(String(repeating: "*A", count: 30) + "B")
        let start = ContinuousClock.now
        #expect(!pattern.matches(String(repeating: "A", count: 200)))
        #expect(ContinuousClock.now - start < .seconds(1))
    }
}

@Suite struct SymbolSelectionTests {
    let names = ["ACME", "BOLT", "EVOK", "AXON", "B2"]

    @Test(arguments: [
        ([], ["ACME", "BOLT", "EVOK", "AXON", "B2"], []),
        (["ACME"], ["ACME"], []),
        (["A*"], ["ACME", "AXON"], []),
        (["A*,B?"], ["ACME", "AXON", "B2"], []),
        (["B*", "ACME"], ["ACME", "BOLT", "B2"], []),
        (["ACME", "A*"], ["ACME", "AXON"], []),
        (["Z*", "ACME"], ["ACME"], ["Z*"]),
        (["NOPE", "a*"], [], ["NOPE", "a*"]),
        ([" A* , EVOK "], ["ACME", "EVOK", "AXON"], []),
    ] as [([String], [String], [String])])
    func resolves(arguments: [String], selected: [String], unmatched: [String]) throws {
        let selection = try SymbolSelection(parsing: arguments)
        let resolved = selection.resolve(against: names)
        #expect(resolved.selected == selected, "in configured order")
        #expect(resolved.unmatched.map(\.text) == unmatched)
    }

    /// Positional names and `--symbols` are one filter: the snapshot is cut through
    /// `limited(to:)` whatever the spelling.
    @Test func selectingIsLimitedToTheMatches() throws {
        let snapshot = StatusFixtures.snapshot(count: 30)
        let byGlob = snapshot.selecting(try SymbolSelection(parsing: ["S000?"]))
        let byNames = snapshot.limited(to: Set((0..<10).map { StatusFixtures.name($0) }))
        #expect(byGlob == byNames)
        #expect(byGlob.symbols.count == 10)
        #expect(snapshot.selecting(SymbolSelection()) == snapshot, "no pattern: everything, unchanged")
    }
}

@Suite struct SymbolOrderTests {
    static func view(_ name: String, fills: Int64?, held: Bool = true, quoted: Bool = true) -> ClusterSnapshot.SymbolView {
        .init(symbol: name, tickSize: "0.01", referencePrice: 100, assignedTo: "n1",
              authority: held ? .init(node: "n1", fencingToken: 1, expiresInMs: 1_000) : nil,
              quote: quoted ? .init(node: "n1", fencingToken: 1, bid: 99, bidQty: 1, ask: 101, askQty: 1, updatedAtMs: 0) : nil,
              position: fills.map { .init(netQty: 0, avgPrice: 0, realizedPnl: 0, unrealizedPnl: 0, fillCount: $0) })
    }

    static let rows = [
        view("A", fills: 5), view("B", fills: 50), view("C", fills: nil), view("D", fills: 50),
        view("E", fills: 1, quoted: false), view("F", fills: 7), view("G", fills: 0, held: false),
    ]

    @Test(arguments: [
        // auto: configured order while every row fits, busiest once rows are cut.
        (SymbolOrder.auto, nil, ["A", "B", "C", "D", "E", "F", "G"], 0, false),
        (.auto, 7, ["A", "B", "C", "D", "E", "F", "G"], 0, false),
        (.auto, 0, ["A", "B", "C", "D", "E", "F", "G"], 0, false),
        // Attention (no quote, no holder) first in configured order, then most fills, ties by configured order.
        (.auto, 4, ["E", "G", "B", "D"], 3, true),
        (.busiest, nil, ["E", "G", "B", "D", "F", "A", "C"], 0, true),
        (.busiest, 3, ["E", "G", "B"], 4, true),
        (.config, 3, ["A", "B", "C"], 4, false),
    ] as [(SymbolOrder, Int?, [String], Int, Bool)])
    func pages(order: SymbolOrder, limit: Int?, shown: [String], omitted: Int, sorted: Bool) {
        let page = SymbolPage(Self.rows, order: order, limit: limit)
        #expect(page.shown.map(\.symbol) == shown)
        #expect(page.omitted == omitted)
        #expect(page.sorted == sorted)
    }
}

@Suite struct StatusTextAtScaleTests {
    /// 1,000 symbols: 40 rows by default, busiest first, the rest counted in one line, and
    /// the frame stays short enough to read.
    @Test func thousandSymbolsStayReadable() {
        let snapshot = StatusFixtures.snapshot(count: 1_000)
        let renderer = StatusRenderer(dataDirectory: "/tmp/var", color: false)
        let lines = renderer.render(snapshot, previous: nil)
        let rows = StatusFixtures.symbolRows(lines)
        #expect(rows.count == StatusRenderer.defaultSymbolLimit)
        // Fill counts are the symbol's index × 7 mod 1,000: the busiest is index 857 (5999 % 1000 = 999).
        let busiest = (0..<1_000).sorted { (($0 * 7) % 1_000, -$0) > (($1 * 7) % 1_000, -$1) }.prefix(40).map(StatusFixtures.name)
        #expect(rows == Array(busiest), "busiest first")
        #expect(lines.contains("  … 960 more symbols; use --symbols PATTERN or --limit N (0: all)"))
        #expect(lines.contains { $0.contains("40 of 1000 shown") })
        #expect(lines.contains { $0.hasPrefix("  TOTAL of all 1000 realized") })
        #expect(lines.count < 120, "\(lines.count) lines")
        // The members' held lists are counted, not spelled out.
        let member = lines.first { $0.hasPrefix("  n1 ") }
        #expect(member?.contains("(334 symbols)") == true, "\(member ?? "no n1 line")")
        #expect(lines.allSatisfy { $0.count < 240 }, "no line runs away")
    }

    @Test func limitZeroShowsEveryRowInConfiguredOrder() {
        let snapshot = StatusFixtures.snapshot(count: 1_000)
        let lines = StatusRenderer(dataDirectory: "/tmp/var", color: false, symbolLimit: 0).render(snapshot, previous: nil)
        let rows = StatusFixtures.symbolRows(lines)
        #expect(rows == (0..<1_000).map(StatusFixtures.name))
        #expect(!lines.contains { $0.contains("more symbols") })
    }

    @Test func aSmallClusterLooksAsBefore() {
        let snapshot = StatusFixtures.snapshot(count: 6)
        let lines = StatusRenderer(dataDirectory: "/tmp/var", color: false).render(snapshot, previous: nil)
        #expect(StatusFixtures.symbolRows(lines) == (0..<6).map(StatusFixtures.name), "configured order when everything fits")
        #expect(!lines.contains { $0.contains("more symbol") || $0.contains(" shown") })
        #expect(lines.contains { $0.hasPrefix("  TOTAL realized") })
    }

    /// With --sort config a cut can hide a symbol without a holder: the count line says so.
    @Test func hiddenProblemsAreCounted() {
        var snapshot = StatusFixtures.snapshot(count: 100)
        snapshot.symbols[99].authority = nil
        let lines = StatusRenderer(dataDirectory: "/tmp/var", color: false, symbolLimit: 10, order: .config).render(snapshot, previous: nil)
        #expect(lines.contains("  … 90 more symbols (1 of them without holder or quote); use --symbols PATTERN or --limit N (0: all)"))
        let busiest = StatusRenderer(dataDirectory: "/tmp/var", color: false, symbolLimit: 10).render(snapshot, previous: nil)
        #expect(StatusFixtures.symbolRows(busiest).first == StatusFixtures.name(99), "busiest order puts it first")
    }

    @Test func colourEscapesAreBalancedAndAbsentWithoutColour() {
        let snapshot = StatusFixtures.snapshot(count: 50)
        #expect(!StatusRenderer(dataDirectory: "/d", color: false).render(snapshot, previous: nil).joined().contains("\u{1b}"))
        var changed = snapshot
        changed.symbols[0].position?.fillCount += 1_000
        let coloured = StatusRenderer(dataDirectory: "/d", color: true).render(changed, previous: snapshot)
        #expect(coloured.contains { $0.contains("\u{1b}[") })
        #expect(coloured.allSatisfy { TerminalText.visibleCount($0) <= $0.count })
    }

    /// `-o json`: every matching symbol unless --limit, plus two added counts.
    @Test func jsonDocumentAddsCountsAndKeepsTheSchema() throws {
        let snapshot = StatusFixtures.snapshot(count: 100)
        let all = try JSONSerialization.jsonObject(with: MMJSON.encode(StatusDocument(snapshot, order: .auto, limit: nil))) as? [String: Any]
        #expect((all?["symbols"] as? [Any])?.count == 100)
        #expect(all?["symbols_matched"] as? Int == 100 && all?["symbols_omitted"] as? Int == 0)
        #expect(all?["schema_version"] as? Int == ClusterSnapshot.currentSchemaVersion)
        let limitedData = try MMJSON.encode(StatusDocument(snapshot, order: .auto, limit: 5))
        let limited = try JSONSerialization.jsonObject(with: limitedData) as? [String: Any]
        #expect(limited?["symbols_matched"] as? Int == 100 && limited?["symbols_omitted"] as? Int == 95)
        // Still the documented snapshot: it decodes as one, with the 5 busiest symbols.
        let decoded = try MMJSON.decode(ClusterSnapshot.self, from: limitedData)
        #expect(decoded.symbols.map(\.symbol) == SymbolPage(snapshot.symbols, order: .busiest, limit: 5).shown.map(\.symbol))
        #expect(decoded.totals == snapshot.totals, "totals over every matching symbol")
    }
}

enum StatusFixtures {
    static func name(_ index: Int) -> String { "S" + String(format: "%04d", index) }

    /// `count` symbols held and quoted by n1…n3 round robin, fill count index × 7 mod 1,000.
    static func snapshot(count: Int) -> ClusterSnapshot {
        var assignments: [String: String] = [:]
        var totals = ClusterSnapshot.Totals(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0)
        let symbols = (0..<count).map { index -> ClusterSnapshot.SymbolView in
            let node = "n\(index % 3 + 1)"
            assignments[name(index)] = node
            let fills = Int64((index * 7) % 1_000)
            totals.fillCount += fills
            totals.realizedPnl += Int64(index)
            return .init(symbol: name(index), tickSize: "0.01", referencePrice: 10_000 + Int64(index), assignedTo: node,
                         authority: .init(node: node, fencingToken: Int64(index + 1), expiresInMs: 2_000),
                         quote: .init(node: node, fencingToken: Int64(index + 1), bid: 9_999, bidQty: 5, ask: 10_001, askQty: 5, updatedAtMs: 0),
                         position: .init(netQty: 1, avgPrice: 10_000, realizedPnl: Int64(index), unrealizedPnl: 0, fillCount: fills))
        }
        return ClusterSnapshot(
            takenAtMs: 1_700_000_000_000, supervisor: SupervisorInfo(pid: 1, uptimeMs: 1_000, startedAtMs: 1_699_999_999_000),
            processes: [], members: (1...3).map { .init(node: "n\($0)", status: .alive, expiresInMs: 2_000) },
            assignments: .init(version: 1, symbols: assignments), symbols: symbols, totals: totals,
            recentFills: [], recentEvents: [], errors: [])
    }

    /// The symbol names of the SYMBOLS table's rows, in order.
    static func symbolRows(_ lines: [String]) -> [String] {
        guard let header = lines.firstIndex(where: { $0.hasPrefix("  SYMBOL ") }) else { return [] }
        return lines[(header + 1)...].prefix { $0.hasPrefix("  S") || $0.hasPrefix("* S") }.map { String($0.dropFirst(2).prefix { $0 != " " }) }
    }
}
