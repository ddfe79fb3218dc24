import MMCore
import PropertyBased
import Testing
@testable import ClusterCheck

@Suite("drill: fault planning")
struct FaultPlanningTests {
    @Test("the same seed gives the same fault sequence; another seed a different one")
    func deterministic() {
        let planner = FaultPlanner(enabled: FaultKind.allCases, maximumNodes: 5)
        func sequence(_ seed: UInt64) -> [PlannedFault] {
            var generator = SeededGenerator(seed: seed)
            return (0..<40).compactMap { _ in planner.next(using: &generator, runningNodes: ["n1", "n2", "n3"]) }
        }
        #expect(sequence(7) == sequence(7))
        #expect(sequence(7) != sequence(8))
        #expect(sequence(7).count == 40)
    }

    @Test("SplitMix64 matches its reference output (seed 0)")
    func splitMixReference() {
        var generator = SeededGenerator(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test("property: node faults target a running node and keep a survivor; add respects the cap")
    func applicability() async {
        await propertyCheck(count: 300, input: Gen.int(in: 0...6), Gen.int64(in: 0...1_000_000)) { nodeCount, seed in
            let nodes = (0..<nodeCount).map { "n\($0 + 1)" }
            let planner = FaultPlanner(enabled: FaultKind.allCases, minimumNodes: 2, maximumNodes: 5)
            var generator = SeededGenerator(seed: UInt64(seed))
            guard let fault = planner.next(using: &generator, runningNodes: nodes) else {
                Issue.record("restarts are always applicable")
                return
            }
            if fault.kind.targetsNode {
                #expect(nodeCount >= 2)
                #expect(fault.target.map(nodes.contains) == true)
            } else {
                #expect(fault.target == nil)
            }
            if fault.kind == .add { #expect(nodeCount < 5) }
        }
    }

    @Test("only enabled faults are chosen; none applicable gives nil")
    func enabledOnly() {
        var generator = SeededGenerator(seed: 3)
        let killsOnly = FaultPlanner(enabled: [.kill], maximumNodes: 4)
        for _ in 0..<20 { #expect(killsOnly.next(using: &generator, runningNodes: ["n1", "n2"])?.kind == .kill) }
        #expect(killsOnly.next(using: &generator, runningNodes: ["n1"]) == nil)
    }

    @Test("busiest targeting hits the node holding the most symbols, ties to the lowest ordinal; kinds follow the seed either way")
    func busiestTargeting() {
        var random = SeededGenerator(seed: 11)
        var busiest = SeededGenerator(seed: 11)
        let randomPlanner = FaultPlanner(enabled: [.kill, .stop, .restartState], maximumNodes: 4)
        let busiestPlanner = FaultPlanner(enabled: [.kill, .stop, .restartState], maximumNodes: 4, targeting: .busiest)
        let nodes = ["n10", "n2", "n3"]
        for round in 0..<30 {
            let holdings = round % 2 == 0 ? ["n2": 1, "n3": 4, "n10": 4] : ["n2": 5, "n3": 0]
            let chosen = busiestPlanner.next(using: &busiest, runningNodes: nodes, holdings: holdings)
            let reference = randomPlanner.next(using: &random, runningNodes: nodes, holdings: holdings)
            #expect(chosen?.kind == reference?.kind)
            if chosen?.kind.targetsNode == true {
                #expect(chosen?.target == (round % 2 == 0 ? "n3" : "n2"))
            }
        }
    }

    @Test("service faults: only with a survivor replica or a quorum to keep; targets are running replicas or members; quorum loss pauses a majority")
    func serviceFaults() async {
        let planner = FaultPlanner(enabled: [.killCoordinator, .stopCoordinator, .killEtcd, .quorumLoss], maximumNodes: 5)
        var generator = SeededGenerator(seed: 5)
        #expect(planner.next(using: &generator, runningNodes: ["n1", "n2"]) == nil, "embedded cluster: none applies")
        #expect(planner.applicable(runningNodes: [], services: ServiceTargets(coordinators: ["coordinator"], etcdMembers: ["etcd1"])).isEmpty)
        await propertyCheck(count: 200, input: Gen.int(in: 1...5), Gen.int(in: 0...5), Gen.int64(in: 0...1_000_000)) { replicas, members, seed in
            let services = ServiceTargets(
                coordinators: (1...replicas).map { $0 == 1 ? "coordinator" : "coordinator\($0)" }, etcdMembers: (0..<members).map { "etcd\($0 + 1)" })
            var generator = SeededGenerator(seed: UInt64(seed))
            guard let fault = planner.next(using: &generator, runningNodes: ["n1", "n2"], services: services) else {
                #expect(replicas < 2 && members < 3)
                return
            }
            switch fault.kind {
            case .killCoordinator, .stopCoordinator:
                #expect(replicas >= 2 && fault.target.map(services.coordinators.contains) == true)
            case .killEtcd:
                #expect(members >= 3 && fault.target.map(services.etcdMembers.contains) == true)
            case .quorumLoss:
                let paused = fault.targets ?? []
                #expect(members >= 3 && paused.count == members / 2 + 1 && Set(paused).count == paused.count)
                #expect(paused.allSatisfy(services.etcdMembers.contains))
            default:
                Issue.record("\(fault.kind) was not enabled")
            }
        }
    }

    @Test("fault lists parse; mistakes are named")
    func parsing() throws {
        #expect(try FaultKind.parseList("kill, stop,restart-state,kill") == [.kill, .stop, .restartState])
        #expect(throws: SetupError.self) { try FaultKind.parseList("kill,explode") }
        #expect(throws: SetupError.self) { try FaultKind.parseList(",") }
    }
}

@Suite("drill: recovery and gaps")
struct RecoveryTests {
    let symbols = Fixtures.symbols
    let t0: Int64 = 1_700_000_000_000

    func observation(at: Int64, holders: [String: String?], tokens: [String: Int64], quotes: [Quote], alive: [String], processes: [ProcessStatus] = []) -> ClusterObservation {
        let authority = AuthorityList(
            authority: symbols.map { symbol in
                let holder = holders[symbol] ?? nil
                return AuthorityStatus(symbol: symbol, assignedTo: holder, node: holder, fencingToken: tokens[symbol] ?? 0, expiresAtMs: nil, expiresInMs: nil)
            }, quietForMs: 0)
        return ClusterObservation(
            atMs: at, authority: authority, members: Fixtures.members(alive), quotes: quotes,
            processes: ProcessList(supervisor: SupervisorInfo(pid: 1, uptimeMs: 0, startedAtMs: 0), processes: processes))
    }

    @Test("kill: a leftover quote is not recovery; a new holder's quote or the restarted victim's fresh quote is")
    func killRecovery() {
        let before = observation(
            at: t0 - 10, holders: ["ACME": "n2", "BOLT": "n1", "CRUX": "n2"], tokens: ["ACME": 5, "BOLT": 1, "CRUX": 3],
            quotes: [Fixtures.quote("ACME", node: "n2", token: 5, updatedAtMs: t0 - 100), Fixtures.quote("BOLT", node: "n1", token: 1, updatedAtMs: t0 - 100), Fixtures.quote("CRUX", node: "n2", token: 3, updatedAtMs: t0 - 100)],
            alive: ["n1", "n2"])
        let fault = PlannedFault(kind: .kill, target: "n2")
        let affected = FaultContext.affectedSymbols(of: fault, before: before, symbols: symbols)
        #expect(affected == ["ACME", "CRUX"])
        let context = FaultContext(fault: fault, atMs: t0, affected: affected, tokensBefore: ["ACME": 5, "BOLT": 1, "CRUX": 3])

        // Right after the kill everything looks held and quoted, but nothing was redone.
        var after = before
        after.atMs = t0 + 50
        #expect(!context.isRecovered(after))
        #expect(context.orphanQuoteRests(symbol: "ACME", in: after))

        // n1 took ACME with a new token; CRUX still shows the dead node's quote.
        let partial = observation(
            at: t0 + 2_100, holders: ["ACME": "n1", "BOLT": "n1", "CRUX": "n2"], tokens: ["ACME": 6, "BOLT": 1, "CRUX": 3],
            quotes: [Fixtures.quote("ACME", node: "n1", token: 6, updatedAtMs: t0 + 2_050), Fixtures.quote("BOLT", node: "n1", token: 1, updatedAtMs: t0 - 100), Fixtures.quote("CRUX", node: "n2", token: 3, updatedAtMs: t0 - 100)],
            alive: ["n1", "n2"])
        #expect(!context.isRecovered(partial))
        #expect(!context.orphanQuoteRests(symbol: "ACME", in: partial))
        #expect(context.orphanQuoteRests(symbol: "CRUX", in: partial))

        // The restarted n2 re-quotes CRUX under the same (extended) token: recovered.
        var done = partial
        done.atMs = t0 + 2_300
        done.quotes![2].updatedAtMs = t0 + 2_250
        #expect(context.isRecovered(done))
    }

    @Test("stop: the paused holder itself never counts as recovered")
    func stopRecovery() {
        let fault = PlannedFault(kind: .stop, target: "n1")
        let context = FaultContext(fault: fault, atMs: t0, affected: ["ACME"], tokensBefore: ["ACME": 2])
        let stillPaused = observation(
            at: t0 + 3_000, holders: ["ACME": "n1"], tokens: ["ACME": 3],
            quotes: [Fixtures.quote("ACME", node: "n1", token: 3, updatedAtMs: t0 + 2_900)], alive: ["n1", "n2"])
        #expect(!context.isRecovered(stillPaused))
        let takenOver = observation(
            at: t0 + 3_000, holders: ["ACME": "n2"], tokens: ["ACME": 3],
            quotes: [Fixtures.quote("ACME", node: "n2", token: 3, updatedAtMs: t0 + 2_900)], alive: ["n1", "n2"])
        #expect(context.isRecovered(takenOver))
    }

    @Test("restarts need the process back under a new pid; add needs the new member")
    func processRecovery() {
        let quotes = symbols.map { Fixtures.quote($0, node: "n1", token: 2, updatedAtMs: t0 + 500) }
        let holders: [String: String?] = ["ACME": "n1", "BOLT": "n1", "CRUX": "n1"]
        let tokens: [String: Int64] = ["ACME": 2, "BOLT": 2, "CRUX": 2]
        let restart = FaultContext(fault: PlannedFault(kind: .restartExchange, target: nil), atMs: t0, affected: symbols, tokensBefore: tokens, pidBefore: 100)
        func exchange(pid: Int32, _ state: ProcessState) -> [ProcessStatus] {
            [ProcessStatus(name: "exchange", role: "exchange", pid: pid, state: state, restarts: 1, uptimeMs: 1, port: 1, lastExit: nil)]
        }
        #expect(!restart.isRecovered(observation(at: t0 + 600, holders: holders, tokens: tokens, quotes: quotes, alive: ["n1"], processes: exchange(pid: 100, .running))))
        #expect(!restart.isRecovered(observation(at: t0 + 600, holders: holders, tokens: tokens, quotes: quotes, alive: ["n1"], processes: exchange(pid: 101, .starting))))
        #expect(restart.isRecovered(observation(at: t0 + 600, holders: holders, tokens: tokens, quotes: quotes, alive: ["n1"], processes: exchange(pid: 101, .running))))

        let add = FaultContext(fault: PlannedFault(kind: .add, target: nil), atMs: t0, affected: symbols, tokensBefore: tokens, addedNode: "n4")
        #expect(!add.isRecovered(observation(at: t0 + 600, holders: holders, tokens: tokens, quotes: quotes, alive: ["n1"])))
        #expect(add.isRecovered(observation(at: t0 + 600, holders: holders, tokens: tokens, quotes: quotes, alive: ["n1", "n4"])))
    }

    @Test("gap tracker: gaps are measured poll to poll, open gaps count, windows clip")
    func gaps() {
        var tracker = QuoteGapTracker(symbols: ["ACME", "BOLT"])
        tracker.observe(atMs: 0, quoted: ["ACME", "BOLT"])
        tracker.observe(atMs: 50, quoted: ["BOLT"])
        tracker.observe(atMs: 100, quoted: ["BOLT"])
        tracker.observe(atMs: 150, quoted: ["ACME", "BOLT"])
        tracker.observe(atMs: 200, quoted: ["ACME"])
        tracker.observe(atMs: 450, quoted: ["ACME"])
        #expect(tracker.closedGaps == [QuoteGapTracker.Gap(symbol: "ACME", startMs: 50, endMs: 150)])
        #expect(tracker.longest?.symbol == "BOLT")
        #expect(tracker.longest?.durationMs == 250)
        #expect(tracker.longestGap(of: ["ACME"], since: 0) == 100)
        #expect(tracker.longestGap(of: ["ACME"], since: 120) == 30)
        #expect(tracker.longestGap(of: ["ACME"], since: 300) == 0)
        #expect(tracker.longestGap(of: ["BOLT"], since: 400) == 50)
    }

    @Test("property: the longest gap is never longer than the observed span and is 0 when always quoted")
    func gapProperty() async {
        await propertyCheck(count: 200, input: Gen.bool.array(of: 1...100)) { quotedAtPoll in
            var tracker = QuoteGapTracker(symbols: ["ACME"])
            for (index, quoted) in quotedAtPoll.enumerated() {
                tracker.observe(atMs: Int64(index) * 50, quoted: quoted ? ["ACME"] : [])
            }
            let span = Int64(quotedAtPoll.count - 1) * 50
            let longest = tracker.longest?.durationMs ?? 0
            #expect(longest <= span)
            if quotedAtPoll.allSatisfy({ $0 }) { #expect(tracker.allGaps.isEmpty) }
            if quotedAtPoll.count >= 3, quotedAtPoll.first == true, quotedAtPoll.last == true, quotedAtPoll.contains(false) { #expect(longest >= 50) }
        }
    }
}

@Suite("drill: goals")
struct DrillGoalTests {
    func record(_ kind: FaultKind, recovery: Int64?, gap: Int64 = 0, orphan: Int64? = nil, resting: Int? = nil) -> FaultRecord {
        FaultRecord(
            index: 1, kind: kind, target: "n1", atMs: 0, affected: [], recoveryMs: recovery, maxUnquotedMs: gap, orphanQuoteMs: orphan,
            quotesRestingAtQuorumReturn: resting, note: nil)
    }

    let goals = DrillGoals(grantTtlMs: 2_000, deadmanTimeoutMs: 2_000, orphanSlackMs: 500)
    let cleanCheck = CheckReport(
        ok: true, exitCode: 0, checkedAtMs: 0, elapsedMs: 0,
        invariants: InvariantName.allCases.map { InvariantResult(name: $0, held: true, summary: "", counts: [:], offending: []) }, unreachable: [])

    @Test("table: each goal met at its bound and missed just past it")
    func table() {
        let cases: [(String, [FaultRecord], CheckReport?, Bool)] = [
            ("kill under 250 (death notice)", [record(.kill, recovery: 249, orphan: 1_900)], cleanCheck, true),
            ("kill at 250", [record(.kill, recovery: 250, orphan: 1_900)], cleanCheck, false),
            ("kill at the old TTL+500 bound", [record(.kill, recovery: 2_500, orphan: 1_900)], cleanCheck, false),
            ("SIGSTOP at TTL+500", [record(.stop, recovery: 2_500, orphan: 1_900)], cleanCheck, true),
            ("SIGSTOP past TTL+500", [record(.stop, recovery: 2_501, orphan: 1_900)], cleanCheck, false),
            ("kill unrecovered", [record(.kill, recovery: nil, orphan: 1_900)], cleanCheck, false),
            ("graceful gap under 250", [record(.add, recovery: 900, gap: 249), record(.remove, recovery: 300, gap: 100)], cleanCheck, true),
            ("graceful gap at 250", [record(.remove, recovery: 300, gap: 250)], cleanCheck, false),
            ("coordinator restart gap under 250 (re-adopted)", [record(.restartCoordinator, recovery: 400, gap: 249)], cleanCheck, true),
            ("coordinator restart gap at 250", [record(.restartCoordinator, recovery: 400, gap: 250)], cleanCheck, false),
            ("coordinator restart gap of the old quiet period", [record(.restartCoordinator, recovery: 2_600, gap: 2_395)], cleanCheck, false),
            ("replica kill gap under 250", [record(.killCoordinator, recovery: 600, gap: 249), record(.killEtcd, recovery: 900, gap: 0)], cleanCheck, true),
            ("replica kill gap at 250", [record(.killCoordinator, recovery: 600, gap: 250)], cleanCheck, false),
            ("etcd member kill gap at 250", [record(.killEtcd, recovery: 600, gap: 250)], cleanCheck, false),
            ("quorum back, quoting within 1 s, nothing resting", [record(.quorumLoss, recovery: 999, gap: 5_000, resting: 0)], cleanCheck, true),
            ("quorum back, quoting after 1 s", [record(.quorumLoss, recovery: 1_000, gap: 5_000, resting: 0)], cleanCheck, false),
            ("quorum lost but a quote kept resting", [record(.quorumLoss, recovery: 300, gap: 5_000, resting: 1)], cleanCheck, false),
            ("quorum lost, quotes not observed", [record(.quorumLoss, recovery: 300, gap: 5_000, resting: nil)], cleanCheck, false),
            ("orphan at dead-man + slack", [record(.stop, recovery: 2_200, orphan: 2_500)], cleanCheck, true),
            ("orphan past dead-man + slack", [record(.stop, recovery: 2_200, orphan: 2_501)], cleanCheck, false),
            ("broken invariant", [record(.restartState, recovery: 100)], CheckReport(ok: false, exitCode: 1, checkedAtMs: 0, elapsedMs: 0, invariants: [InvariantResult(name: .fillsExactlyOnce, held: false, summary: "lost 1", counts: ["lost": 1], offending: [])], unreachable: []), false),
            ("no final check", [record(.restartState, recovery: 100)], nil, false),
        ]
        for (label, faults, check, met) in cases {
            let evaluated = goals.evaluate(faults: faults, check: check)
            #expect(evaluated.allSatisfy(\.met) == met, "\(label): \(evaluated.filter { !$0.met })")
        }
    }

    @Test("percentiles through the histogram")
    func percentiles() {
        let values = (1...100).map { Int64($0) * 10 }
        let p = Percentiles.of(values)
        #expect(p.count == 100)
        #expect(p.maxMs == 1_000)
        #expect(abs(p.p50Ms - 500) <= 1)
        #expect(abs(p.p99Ms - 990) <= 1)
        #expect(Percentiles.of([]).count == 0)
    }
}

@Suite("drill: host faults")
struct HostFaultTests {
    let t0: Int64 = 1_700_000_000_000

    func threeHosts(_ extra: [String: String] = [:]) async throws -> ClusterConfig {
        try await ClusterConfig.load(path: nil, environment: [:], overrides: [
            "hosts.a": "10.77.0.1", "hosts.b": "10.77.0.2", "hosts.c": "10.77.0.3", "placement.default": "a",
            "placement.coordinator2": "b", "placement.coordinator3": "c", "placement.etcd2": "b", "placement.etcd3": "c",
            "placement.nodes": "b,c", "coordinator.backend": "etcd", "nodes.count": "4",
        ].merging(extra) { _, new in new })
    }

    @Test("only hosts whose loss the cluster survives are targets, each with its nodes")
    func expendableHosts() async throws {
        let config = try await threeHosts()
        let hosts = ServiceTargets.expendableHosts(config: config, nodeCount: 4)
        // a runs the exchange, state and GUI: never a target.
        #expect(hosts == ["b": ["n1", "n3"], "c": ["n2", "n4"]])
        // With two of three etcd members on b, losing b loses the quorum.
        let lopsided = try await threeHosts(["placement.etcd3": "b"])
        #expect(ServiceTargets.expendableHosts(config: lopsided, nodeCount: 4).keys.sorted() == ["c"])
        // Every node on b: losing b leaves no node.
        let allOnB = try await threeHosts(["placement.nodes": "b"])
        #expect(ServiceTargets.expendableHosts(config: allOnB, nodeCount: 4).keys.sorted() == ["c"])
        #expect(ServiceTargets.expendableHosts(config: .defaults, nodeCount: 3).isEmpty)
    }

    @Test("host faults are chosen only with target hosts, and name the host and its nodes")
    func planning() {
        let planner = FaultPlanner(enabled: [.partitionHost, .killHost], maximumNodes: 6)
        var generator = SeededGenerator(seed: 5)
        #expect(planner.next(using: &generator, runningNodes: ["n1", "n2"]) == nil)
        let services = ServiceTargets(hosts: ["b": ["n1", "n3"], "c": ["n2"]])
        for _ in 0..<20 {
            let fault = planner.next(using: &generator, runningNodes: ["n1", "n2", "n3"], services: services)
            #expect(fault?.target.flatMap { services.hosts[$0]?.sorted() } == fault?.targets)
        }
    }

    @Test("a cut-off host's nodes are not recovery; their quotes are the orphans")
    func recovery() {
        let fault = PlannedFault(kind: .partitionHost, target: "b", targets: ["n1", "n3"])
        let symbols = ["ACME", "BOLT", "CRUX"]
        func observation(holders: [String: String], quotes: [Quote]) -> ClusterObservation {
            ClusterObservation(
                atMs: t0 + 2_500,
                authority: AuthorityList(authority: symbols.map { AuthorityStatus(symbol: $0, assignedTo: holders[$0], node: holders[$0], fencingToken: 5, expiresAtMs: nil, expiresInMs: nil) }, quietForMs: 0),
                members: Fixtures.members(["n2"]), quotes: quotes,
                processes: ProcessList(supervisor: SupervisorInfo(pid: 1, uptimeMs: 0, startedAtMs: 0), processes: []))
        }
        let before = observation(holders: ["ACME": "n1", "BOLT": "n2", "CRUX": "n3"], quotes: [])
        let affected = FaultContext.affectedSymbols(of: fault, before: before, symbols: symbols)
        #expect(affected == ["ACME", "CRUX"])
        let context = FaultContext(fault: fault, atMs: t0, affected: affected, tokensBefore: ["ACME": 4, "CRUX": 4])
        let stale = observation(holders: ["ACME": "n1", "BOLT": "n2", "CRUX": "n2"], quotes: [
            Fixtures.quote("ACME", node: "n1", token: 5, updatedAtMs: t0 + 2_400), Fixtures.quote("CRUX", node: "n2", token: 5, updatedAtMs: t0 + 2_400),
        ])
        #expect(!context.isRecovered(stale), "n1 is on the cut-off host")
        let orphan = observation(holders: ["ACME": "n2", "BOLT": "n2", "CRUX": "n2"], quotes: [Fixtures.quote("ACME", node: "n3", token: 4, updatedAtMs: t0 - 10)])
        #expect(context.orphanQuoteRests(symbol: "ACME", in: orphan))
        let moved = observation(holders: ["ACME": "n2", "BOLT": "n2", "CRUX": "n2"], quotes: [
            Fixtures.quote("ACME", node: "n2", token: 5, updatedAtMs: t0 + 2_400), Fixtures.quote("CRUX", node: "n2", token: 5, updatedAtMs: t0 + 2_400),
        ])
        #expect(context.isRecovered(moved))
    }
}
