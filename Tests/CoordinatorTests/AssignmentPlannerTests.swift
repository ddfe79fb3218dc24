import Coordinator
import PropertyBased
import Testing

/// The movement facts the architecture doc argues, checked on random member sets.
enum Movement {
    /// Symbols placed on their unconstrained rendezvous winner.
    static func settled(_ table: [String: String], symbols: [String], nodes: [String]) -> Set<String> {
        Set(symbols.filter { table[$0] != nil && table[$0] == AssignmentPlanner.preferredNode(symbol: $0, nodes: nodes) })
    }

    /// Checks one membership change `before → after` (one node joined or left, or none).
    static func check(symbols: [String], before: [String], after: [String]) {
        let old = AssignmentPlanner.assign(symbols: symbols, nodes: before)
        let new = AssignmentPlanner.assign(symbols: symbols, nodes: after)
        let joined = Set(after).subtracting(before)
        let left = Set(before).subtracting(after)
        #expect(joined.count + left.count <= 1, "one change at a time")
        let settledBoth = settled(old, symbols: symbols, nodes: before).intersection(settled(new, symbols: symbols, nodes: after))
        let spilled = Set(symbols).subtracting(settledBoth)
        let moved = Set(symbols.filter { old[$0] != new[$0] })
        if joined.isEmpty && left.isEmpty { #expect(moved.isEmpty) }
        let explained = moved.filter { symbol in
            if let node = joined.first { return new[symbol] == node }
            if let node = left.first { return old[symbol] == node }
            return false
        }
        // Plain rendezvous part: a settled symbol moves only to the joiner or off the leaver.
        #expect(moved.intersection(settledBoth).isSubset(of: explained), "unexplained moves \(moved.intersection(settledBoth).subtracting(explained).sorted())")
        // Extra moves are confined to symbols the load bound displaced before or after.
        #expect(moved.subtracting(explained).isSubset(of: spilled))
        // A leaver's symbols always move (they must), and a joiner only ever gains.
        if let node = left.first { #expect(Set(symbols.filter { old[$0] == node }).isSubset(of: moved)) }
        if spilled.isEmpty {
            // Bound not binding: exactly minimal.
            if let node = joined.first { #expect(moved == Set(symbols.filter { new[$0] == node })) }
            if let node = left.first { #expect(moved == Set(symbols.filter { old[$0] == node })) }
        }
    }
}

@Suite struct AssignmentPlannerTests {
    static let defaultSymbols = ["ACME", "BOLT", "CRUX", "DYNA", "EVOK", "FLUX"]

    @Test func capacityIsCeilPlusOne() {
        let table: [(symbols: Int, nodes: Int, capacity: Int)] = [(6, 3, 3), (7, 3, 4), (1, 5, 2), (1000, 100, 11), (0, 2, 1), (5, 0, 0)]
        for row in table {
            #expect(AssignmentPlanner.capacity(symbolCount: row.symbols, nodeCount: row.nodes) == row.capacity, "\(row)")
        }
    }

    @Test func noNodesMeansNoAssignments() {
        #expect(AssignmentPlanner.assign(symbols: Self.defaultSymbols, nodes: [String]()).isEmpty)
    }

    @Test func oneNodeTakesEverything() {
        let table = AssignmentPlanner.assign(symbols: Self.defaultSymbols, nodes: ["n7"])
        #expect(table == Dictionary(uniqueKeysWithValues: Self.defaultSymbols.map { ($0, "n7") }))
    }

    /// Pins the hash: every coordinator build must compute the same table, or a rolling
    /// restart would move symbols for no reason.
    @Test func defaultClusterTableIsStable() {
        let table = AssignmentPlanner.assign(symbols: Self.defaultSymbols, nodes: ["n1", "n2", "n3"])
        #expect(table == Self.goldenDefaultTable, "got \(table.sorted { $0.key < $1.key })")
    }

    static let goldenDefaultTable: [String: String] = [
        "ACME": "n3", "BOLT": "n3", "CRUX": "n3", "DYNA": "n2", "EVOK": "n2", "FLUX": "n1",
    ]

    @Test func movesAreListedAsFromTo() {
        let moves = AssignmentPlanner.moves(from: ["ACME": "n1", "BOLT": "n2"], to: ["ACME": "n2", "BOLT": "n2", "CRUX": "n1"])
        #expect(moves == ["ACME:n1→n2", "CRUX:-→n1"])
        #expect(AssignmentPlanner.moves(from: ["ACME": "n1"], to: [:]) == ["ACME:n1→-"])
    }

    @Test func coversBalancesAndIgnoresOrder() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...60), Gen.int(in: 1...12), Gen.int(in: 0...1_000_000)) { symbolCount, nodeCount, salt in
            let symbols = (0..<symbolCount).map { "S\(salt)-\($0)" }
            let nodes = (0..<nodeCount).map { "n\(salt % 97)-\($0)" }
            let table = AssignmentPlanner.assign(symbols: symbols, nodes: nodes)
            #expect(Set(table.keys) == Set(symbols))
            #expect(Set(table.values).isSubset(of: Set(nodes)))
            let capacity = (symbolCount + nodeCount - 1) / nodeCount + 1
            var load: [String: Int] = [:]
            for node in table.values { load[node, default: 0] += 1 }
            #expect(load.values.allSatisfy { $0 <= capacity }, "load \(load) over \(capacity)")
            #expect(AssignmentPlanner.assign(symbols: symbols.reversed(), nodes: nodes.reversed() + nodes) == table)
        }
    }

    @Test func joinMovesOnlyToTheNewNode() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...50), Gen.int(in: 0...10), Gen.int(in: 0...1_000_000)) { symbolCount, nodeCount, salt in
            let symbols = (0..<symbolCount).map { "S\(salt)-\($0)" }
            let before = (0..<nodeCount).map { "n\(salt % 89)-\($0)" }
            Movement.check(symbols: symbols, before: before, after: before + ["new-\(salt)"])
        }
    }

    @Test func leaveMovesOnlyTheLeaversSymbols() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...50), Gen.int(in: 1...10), Gen.int(in: 0...1_000_000)) { symbolCount, nodeCount, salt in
            let symbols = (0..<symbolCount).map { "S\(salt)-\($0)" }
            let before = (0..<nodeCount).map { "n\(salt % 83)-\($0)" }
            let leaver = before[salt % before.count]
            Movement.check(symbols: symbols, before: before, after: before.filter { $0 != leaver })
        }
    }

    /// With the bound slack, plain rendezvous placement holds for most symbols at scale.
    @Test func boundRarelyBindsAtScale() {
        let symbols = (0..<1_000).map { "SYM\($0)" }
        let nodes = (1...100).map { "n\($0)" }
        let table = AssignmentPlanner.assign(symbols: symbols, nodes: nodes)
        let spilled = symbols.count - Movement.settled(table, symbols: symbols, nodes: nodes).count
        #expect(spilled < symbols.count / 4, "\(spilled) of 1000 symbols displaced by the load bound")
    }
}
