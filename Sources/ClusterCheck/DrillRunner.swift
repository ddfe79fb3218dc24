import Foundation
import MMCore

public struct DrillSettings: Sendable, Hashable {
    public var durationMs: Int64
    public var seed: UInt64
    public var faults: [FaultKind]
    /// How often the cluster is polled while a fault is in flight.
    public var pollIntervalMs: Int64 = 50
    /// A fault that has not recovered by then is recorded as unrecovered.
    public var recoveryTimeoutMs: Int64 = 20_000
    /// Bound on waiting for the cluster to be steady before each fault.
    public var steadyTimeoutMs: Int64 = 30_000
    /// Pause in the steady state between faults.
    public var pauseBetweenFaultsMs: Int64 = 300
    public var orphanSlackMs: Int64 = 500
    /// Whether a missed latency goal fails the drill (see `DrillGoal.latency`).
    public var enforceLatencyGoals = true
    /// Nodes kept running (node faults need a survivor) and the most `add` may reach.
    public var minimumNodes: Int = 2
    public var maximumNodes: Int? = nil
    /// Which node a node fault hits.
    public var targeting: FaultPlanner.Targeting = .random
    /// Stop after this many faults, even before the duration ends.
    public var maximumFaults: Int? = nil
    /// The program that acts on whole hosts (`partition-host`, `kill-host`): called as
    /// `PROGRAM partition|heal|kill-host|start-host HOST`, exit 0 when done. Without it no
    /// host fault is chosen. Scripts/netns-host-fault is the one for network namespaces.
    public var hostFaultCommand: String? = nil
    /// The hosts host faults may hit (nil: any the cluster survives losing).
    public var faultHosts: [String]? = nil

    public init(durationMs: Int64, seed: UInt64, faults: [FaultKind]) {
        self.durationMs = durationMs
        self.seed = seed
        self.faults = faults
    }
}

/// Drives faults through the supervisor's control API one at a time and measures recovery by
/// polling authority, quotes, members and processes. Everything is sequential: one poll loop,
/// one fault in flight, so every measurement belongs to exactly one fault.
public struct DrillRunner: Sendable {
    public let connection: ClusterConnection
    public let settings: DrillSettings
    public let clock: any EpochClock
    public let log: @Sendable (String) -> Void

    public init(connection: ClusterConnection, settings: DrillSettings, clock: any EpochClock = MonotonicEpochClock(), log: @escaping @Sendable (String) -> Void) {
        self.connection = connection
        self.settings = settings
        self.clock = clock
        self.log = log
    }

    private var symbols: [String] { connection.config.symbolNames }

    /// Mutable run state, kept in one place so helper methods can update it.
    struct Run {
        var tracker: QuoteGapTracker
        var lastAuthority: AuthorityList?
        var faults: [FaultRecord] = []
        var problems: [String] = []
    }

    public func run() async -> DrillReport {
        let started = clock.nowMs()
        var run = Run(tracker: QuoteGapTracker(symbols: symbols))
        guard let control = connection.supervisorControl else {
            return finish(run: run, started: started, check: nil, extraProblem: "no supervisor token: drills need DATA_DIR/tokens/supervisor", exit: 64)
        }
        let initial = await observe(&run)
        guard initial.processes != nil else {
            return finish(run: run, started: started, check: nil, extraProblem: "supervisor unreachable at \(connection.config.supervisorURL): start the cluster with 'mmctl start'", exit: 4)
        }
        let maximumNodes = settings.maximumNodes ?? max(initial.runningNodes.count + 2, settings.minimumNodes + 1)
        let planner = FaultPlanner(enabled: settings.faults, minimumNodes: settings.minimumNodes, maximumNodes: maximumNodes, targeting: settings.targeting)
        var generator = SeededGenerator(seed: settings.seed)
        let deadline = started + settings.durationMs

        while clock.nowMs() < deadline, run.faults.count < (settings.maximumFaults ?? .max) {
            let before = await waitForSteady(&run, bound: min(settings.steadyTimeoutMs, max(1_000, deadline - clock.nowMs() + 5_000)))
            guard clock.nowMs() < deadline else { break }
            if !before.isSteady(symbols: symbols) {
                run.problems.append("cluster not steady within \(settings.steadyTimeoutMs) ms before fault #\(run.faults.count + 1); applying it anyway")
            }
            await pause(&run, ms: settings.pauseBetweenFaultsMs)
            let current = await observe(&run)
            var holdings: [String: Int] = [:]
            for entry in current.authority?.authority ?? [] { if let node = entry.node { holdings[node, default: 0] += 1 } }
            var services = current.serviceTargets
            if settings.hostFaultCommand != nil {
                let highestNode = current.runningNodes.compactMap { Int($0.dropFirst()) }.max() ?? 0
                services.hosts = ServiceTargets.expendableHosts(config: connection.config, nodeCount: max(connection.config.nodeCount, highestNode))
                if let allowed = settings.faultHosts { services.hosts = services.hosts.filter { allowed.contains($0.key) } }
            }
            guard let fault = planner.next(using: &generator, runningNodes: current.runningNodes, holdings: holdings, services: services) else {
                run.problems.append("no enabled fault applies (running nodes: \(current.runningNodes.joined(separator: ",")))")
                break
            }
            let record = await apply(fault, index: run.faults.count + 1, before: current, control: control, run: &run)
            run.faults.append(record)
            log(describe(record))
        }

        _ = await waitForSteady(&run, bound: settings.steadyTimeoutMs)
        log("faults done; running the check")
        // A drill's history is short: the exhaustive walk costs little and names any bad fill.
        let check = await ClusterChecker(connection: connection, clock: clock, mode: .full).run()
        return finish(run: run, started: started, check: check, extraProblem: nil, exit: nil)
    }

    func describe(_ record: FaultRecord) -> String {
        var text = "#\(record.index) \(record.kind.rawValue)\(record.target.map { " \($0)" } ?? "")"
        text += record.recoveryMs.map { ": recovered in \($0) ms" } ?? ": NOT recovered"
        text += ", longest unquoted \(record.maxUnquotedMs) ms"
        if let orphan = record.orphanQuoteMs { text += ", orphan quote \(orphan) ms" }
        if let note = record.note { text += " (\(note))" }
        return text
    }

    // MARK: Faults

    func apply(_ fault: PlannedFault, index: Int, before: ClusterObservation, control: HostRoutedSupervisor, run: inout Run) async -> FaultRecord {
        let affected = FaultContext.affectedSymbols(of: fault, before: before, symbols: symbols)
        let tokens = Dictionary((before.authority?.authority ?? []).map { ($0.symbol, $0.fencingToken) }, uniquingKeysWith: max)
        var context = FaultContext(fault: fault, atMs: clock.nowMs(), affected: affected, tokensBefore: tokens)
        var note: String?
        var chosenTarget: String?
        if fault.kind.targetsHost, let host = fault.target {
            context.atMs = clock.nowMs()
            if let failure = runHostFault(fault.kind == .partitionHost ? "partition" : "kill-host", host) {
                return FaultRecord(
                    index: index, kind: fault.kind, target: host, atMs: context.atMs, affected: affected,
                    recoveryMs: nil, maxUnquotedMs: 0, orphanQuoteMs: nil, note: failure)
            }
        }
        do throws(ClientError) {
            switch fault.kind {
            case .partitionHost, .killHost:
                break
            case .kill:
                context.atMs = clock.nowMs()
                _ = try await control.signal(fault.target!, signal: "KILL")
            case .stop:
                context.atMs = clock.nowMs()
                _ = try await control.signal(fault.target!, signal: "STOP")
            case .restartState, .restartExchange, .restartCoordinator, .restartPostgres:
                let name = fault.kind.restartedProcess!
                context.pidBefore = before.process(name)?.pid
                context.atMs = clock.nowMs()
                _ = try await control.restart(name)
            case .add:
                context.atMs = clock.nowMs()
                let added = try await control.addNode(running: Set((before.processes?.processes ?? []).map(\.name)))
                context.addedNode = added.name
                note = "added \(added.name)"
            case .remove:
                context.atMs = clock.nowMs()
                _ = try await control.removeNode(fault.target!)
            case .killState:
                // The replica that ingests, when one says so: the takeover is what is tested.
                var target = fault.target!
                for (name, client) in connection.stateReplicas.sorted(by: { $0.key < $1.key }) {
                    if let status = try? await client.ingest(), status.ingesting == true { target = name }
                }
                chosenTarget = target
                context.pidBefore = before.process(target)?.pid
                context.atMs = clock.nowMs()
                _ = try await control.signal(target, signal: "KILL")
            case .killCoordinator, .killEtcd, .killPostgres:
                context.pidBefore = before.process(fault.target!)?.pid
                context.atMs = clock.nowMs()
                _ = try await control.signal(fault.target!, signal: "KILL")
            case .stopCoordinator:
                context.atMs = clock.nowMs()
                _ = try await control.signal(fault.target!, signal: "STOP")
            case .quorumLoss:
                context.atMs = clock.nowMs()
                for member in fault.targets ?? [] { _ = try await control.signal(member, signal: "STOP") }
            }
        } catch {
            return FaultRecord(
                index: index, kind: fault.kind, target: fault.target ?? context.addedNode, atMs: context.atMs, affected: affected,
                recoveryMs: nil, maxUnquotedMs: 0, orphanQuoteMs: nil, note: "supervisor refused: \(error)")
        }

        if fault.kind == .quorumLoss {
            // Quorum is lost until every grant has lapsed and every dead-man's switch has fired;
            // then it returns, and recovery is timed from its return.
            let lostAtMs = context.atMs
            let outageMs = connection.config.coordinator.grantTtlMs + connection.config.node.deadmanTimeoutMs + settings.orphanSlackMs
            await pause(&run, ms: outageMs)
            let atReturn = await observe(&run)
            let resting = (atReturn.quotes ?? []).filter { $0.bidPrice != nil || $0.askPrice != nil }
            context.quotesRestingAtReturn = atReturn.quotes == nil ? nil : resting.count
            await resume(fault.targets ?? [], control: control, run: &run)
            context.atMs = clock.nowMs()
            let restingList = resting.map { "\($0.symbol) by \($0.node) token \($0.fencingToken) updated \(atReturn.atMs - $0.updatedAtMs) ms before" }
            note = "quorum lost for \(context.atMs - lostAtMs) ms; quotes resting when it returned: \(context.quotesRestingAtReturn.map(String.init) ?? "unknown")"
                + (restingList.isEmpty ? "" : " (\(restingList.joined(separator: "; ")))")
        }
        if let chosenTarget {
            context.fault.target = chosenTarget
            note = "the ingesting replica"
        }
        let measured = await measureRecovery(context, run: &run)
        if fault.kind == .stop || fault.kind == .stopCoordinator, let target = fault.target {
            await resume([target], control: control, run: &run)
        }
        if fault.kind.targetsHost, let host = fault.target {
            let nodes = fault.targets ?? []
            let cutMs = clock.nowMs() - context.atMs
            if let failure = runHostFault(fault.kind == .partitionHost ? "heal" : "start-host", host) {
                run.problems.append("host \(host) not brought back: \(failure)")
            }
            let backAt = clock.nowMs()
            let back = await waitForHost(host, nodes: nodes, run: &run)
            let what = fault.kind == .partitionHost ? "partitioned" : "down"
            let nodesText = nodes.isEmpty ? "" : " (nodes \(nodes.joined(separator: ",")))"
            note = "host \(host)\(nodesText) \(what) for \(cutMs) ms; "
                + (back ? "back in \(clock.nowMs() - backAt) ms" : "NOT back within \(settings.recoveryTimeoutMs) ms")
            if !back { run.problems.append("host \(host) did not come back within \(settings.recoveryTimeoutMs) ms of its \(fault.kind == .partitionHost ? "heal" : "restart")") }
        }
        let gap = run.tracker.longestGap(of: affected, since: context.atMs)
        return FaultRecord(
            index: index, kind: fault.kind, target: context.fault.target ?? context.addedNode, atMs: context.atMs, affected: affected,
            recoveryMs: measured.recoveryMs, maxUnquotedMs: gap, orphanQuoteMs: measured.orphanMs, quotesRestingAtQuorumReturn: context.quotesRestingAtReturn,
            note: measured.recoveryMs == nil ? [note, "not recovered within \(settings.recoveryTimeoutMs) ms"].compactMap { $0 }.joined(separator: "; ") : note)
    }

    /// Runs the host-fault program; nil when it succeeded, else why not.
    func runHostFault(_ action: String, _ host: String) -> String? {
        guard let command = settings.hostFaultCommand else { return "no --host-fault-command" }
        log("host fault: \(command) \(action) \(host)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command)
        process.arguments = [action, host]
        do { try process.run() } catch { return "cannot run \(command): \(error)" }
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : "\(command) \(action) \(host) exited with status \(process.terminationStatus)"
    }

    /// Waits until every process of `host` runs again and its nodes are live members.
    func waitForHost(_ host: String, nodes: [String], run: inout Run) async -> Bool {
        let deadline = clock.nowMs() + settings.recoveryTimeoutMs
        while clock.nowMs() < deadline {
            let observation = await observe(&run)
            let rows = (observation.processes?.processes ?? []).filter { ClusterProcess(name: $0.name).map(connection.config.hostName(of:)) == host }
            if !rows.isEmpty, rows.allSatisfy({ $0.state == .running }), Set(nodes).isSubset(of: observation.aliveMembers) { return true }
            await sleep(ms: settings.pollIntervalMs)
        }
        return false
    }

    func resume(_ targets: [String], control: HostRoutedSupervisor, run: inout Run) async {
        for target in targets {
            do throws(ClientError) {
                _ = try await control.signal(target, signal: "CONT")
            } catch {
                run.problems.append("SIGCONT to \(target) failed: \(error); it stays paused")
            }
        }
    }

    /// Polls until the fault has recovered (and, for kill/stop, the victim's leftover quotes are
    /// gone; for stop, the node stayed paused past the grant TTL so its lapse is exercised).
    func measureRecovery(_ context: FaultContext, run: inout Run) async -> (recoveryMs: Int64?, orphanMs: Int64?) {
        let watchesOrphans = context.fault.kind == .kill || context.fault.kind == .stop || context.fault.kind.targetsHost
        var orphansLeft = watchesOrphans ? Set(context.affected) : []
        var orphanMs: Int64? = nil
        var recoveryMs: Int64? = nil
        let pausedUntil: EpochMs = switch context.fault.kind {
        case .stop, .stopCoordinator: context.atMs + connection.config.coordinator.grantTtlMs + 500
        // Cut off until its grants have lapsed and the exchange has pulled its quotes.
        case .partitionHost: context.atMs + connection.config.coordinator.grantTtlMs + connection.config.node.deadmanTimeoutMs + settings.orphanSlackMs
        default: context.atMs
        }
        let deadline = context.atMs + settings.recoveryTimeoutMs
        while true {
            let observation = await observe(&run)
            if observation.quotes != nil {
                orphansLeft = orphansLeft.filter { context.orphanQuoteRests(symbol: $0, in: observation) }
                if watchesOrphans, orphansLeft.isEmpty, orphanMs == nil { orphanMs = observation.atMs - context.atMs }
            }
            if recoveryMs == nil, context.isRecovered(observation) { recoveryMs = observation.atMs - context.atMs }
            let orphanDone = !watchesOrphans || orphanMs != nil
            if recoveryMs != nil, orphanDone, observation.atMs >= pausedUntil { break }
            if observation.atMs >= deadline {
                if watchesOrphans && orphanMs == nil { orphanMs = observation.atMs - context.atMs }
                break
            }
            await sleep(ms: settings.pollIntervalMs)
        }
        return (recoveryMs, orphanMs)
    }

    // MARK: Polling

    func observe(_ run: inout Run) async -> ClusterObservation {
        let coordinator = connection.coordinator
        let exchange = connection.exchange
        let supervisor = connection.supervisorReader
        let timeout: Int64 = 1_000
        async let authority = try? await coordinator.authorityFast(timeoutMs: timeout)
        async let members = try? await coordinator.membersFast(timeoutMs: timeout)
        async let quotes = try? await exchange.quotesFast(timeoutMs: timeout)
        async let processes = try? await supervisor.processes()
        let observation = ClusterObservation(atMs: clock.nowMs(), authority: await authority, members: await members, quotes: await quotes, processes: await processes)
        run.tracker.observe(atMs: observation.atMs, quoted: observation.quotedSymbols(fallbackAuthority: run.lastAuthority))
        if let authority = observation.authority { run.lastAuthority = authority }
        return observation
    }

    func waitForSteady(_ run: inout Run, bound: Int64) async -> ClusterObservation {
        let deadline = clock.nowMs() + bound
        var observation = await observe(&run)
        while !observation.isSteady(symbols: symbols), clock.nowMs() < deadline {
            await sleep(ms: settings.pollIntervalMs)
            observation = await observe(&run)
        }
        return observation
    }

    /// Keeps polling (so gaps are still tracked) for `ms`.
    func pause(_ run: inout Run, ms: Int64) async {
        let until = clock.nowMs() + ms
        while clock.nowMs() < until {
            await sleep(ms: settings.pollIntervalMs)
            _ = await observe(&run)
        }
    }

    func sleep(ms: Int64) async {
        try? await Task.sleep(for: .milliseconds(ms))
    }

    // MARK: Report

    func finish(run: Run, started: EpochMs, check: CheckReport?, extraProblem: String?, exit: Int32?) -> DrillReport {
        var problems = run.problems
        if let extraProblem { problems.append(extraProblem) }
        let goals = DrillGoals(
            grantTtlMs: connection.config.coordinator.grantTtlMs, deadmanTimeoutMs: connection.config.node.deadmanTimeoutMs,
            orphanSlackMs: settings.orphanSlackMs)
        let evaluated = goals.evaluate(faults: run.faults, check: check)
        let longest = run.tracker.longest
        let code: Int32
        if let exit {
            code = exit
        } else if let check, check.exitCode == 4 {
            code = 4
        } else {
            code = evaluated.allSatisfy { $0.met || ($0.latency && !settings.enforceLatencyGoals) } ? 0 : 1
        }
        return DrillReport(
            ok: code == 0, exitCode: code, seed: settings.seed, durationMs: clock.nowMs() - started, faultsApplied: run.faults.count,
            perKind: DrillGoals.summaries(run.faults), longestUnquotedGapMs: longest?.durationMs ?? 0, longestUnquotedSymbol: longest?.symbol,
            orphanQuoteLifetimeMaxMs: run.faults.compactMap(\.orphanQuoteMs).max(),
            fillsLost: check?.count(.fillsExactlyOnce, "lost"), fillsDoubleCounted: check?.count(.fillsExactlyOnce, "double_counted"),
            overlappingGrants: check?.count(.grantsNeverOverlap, "overlapping"), staleAccepted: check?.count(.noStaleTokenAccepted, "stale_accepted"),
            goals: evaluated, faults: run.faults, check: check, problems: problems)
    }
}

// Short timeouts for the 50 ms poll: a hung service must cost one poll, not five seconds.
extension CoordinatorClient {
    func authorityFast(timeoutMs: Int64) async throws(ClientError) -> AuthorityList {
        try await endpoint.call(.GET, CoordinatorRoutes.authority.path, timeoutMs: timeoutMs)
    }
    func membersFast(timeoutMs: Int64) async throws(ClientError) -> [NodePresence] {
        try await endpoint.call(.GET, CoordinatorRoutes.members.path, timeoutMs: timeoutMs, as: MemberList.self).members
    }
}

extension ExchangeClient {
    func quotesFast(timeoutMs: Int64) async throws(ClientError) -> [Quote] {
        try await endpoint.call(.GET, ExchangeRoutes.quotes.path, timeoutMs: timeoutMs, as: QuoteList.self).quotes
    }
}
