import MMCore

/// What one poll of the cluster saw. A part is nil when its service did not answer.
public struct ClusterObservation: Sendable, Hashable {
    public var atMs: EpochMs
    public var authority: AuthorityList?
    public var members: [NodePresence]?
    public var quotes: [Quote]?
    public var processes: ProcessList?

    public init(atMs: EpochMs, authority: AuthorityList?, members: [NodePresence]?, quotes: [Quote]?, processes: ProcessList?) {
        self.atMs = atMs
        self.authority = authority
        self.members = members
        self.quotes = quotes
        self.processes = processes
    }

    public func status(_ symbol: String) -> AuthorityStatus? { authority?.authority.first { $0.symbol == symbol } }
    public func quote(_ symbol: String) -> Quote? { quotes?.first { $0.symbol == symbol } }
    public var aliveMembers: Set<String> { Set((members ?? []).filter { $0.status == .alive }.map(\.node)) }

    /// Node processes the supervisor lists as running.
    public var runningNodes: [String] {
        (processes?.processes ?? []).filter { $0.role == "node" && $0.state == .running }.map(\.name)
    }

    public func process(_ name: String) -> ProcessStatus? { processes?.processes.first { $0.name == name } }

    /// Running coordinator replicas and etcd members: what service faults may hit.
    public var serviceTargets: ServiceTargets {
        let running = (processes?.processes ?? []).filter { $0.state == .running }
        return ServiceTargets(
            coordinators: running.filter { $0.role == "coordinator" }.map(\.name), etcdMembers: running.filter { $0.role == "etcd" }.map(\.name),
            postgres: running.contains { $0.name == "postgres" }, stateReplicas: running.filter { $0.role == "state" }.map(\.name))
    }

    /// Symbols quoted right now by the holder of their live grant, under its current token.
    /// When the coordinator did not answer, `fallbackAuthority` (the last answer) judges holders.
    public func quotedSymbols(fallbackAuthority: AuthorityList?) -> Set<String> {
        guard let quotes, let authority = authority ?? fallbackAuthority else { return [] }
        var quoted: Set<String> = []
        for status in authority.authority {
            guard let holder = status.node, let quote = quotes.first(where: { $0.symbol == status.symbol }) else { continue }
            if quote.node == holder, quote.fencingToken == status.fencingToken, quote.bidPrice != nil || quote.askPrice != nil {
                quoted.insert(status.symbol)
            }
        }
        return quoted
    }

    /// Steady: every process running, every running node a live member, every symbol held by
    /// its assignee and quoted by it, no startup quiet period. Faults start only from here, so
    /// one fault's recovery never blurs into the next.
    public func isSteady(symbols: [String]) -> Bool {
        guard let authority, let processes, members != nil, quotes != nil, authority.quietForMs == 0 else { return false }
        guard processes.processes.allSatisfy({ $0.state == .running }) else { return false }
        let alive = aliveMembers
        guard runningNodes.allSatisfy({ alive.contains($0) }) else { return false }
        let quoted = quotedSymbols(fallbackAuthority: nil)
        return symbols.allSatisfy { symbol in
            guard let status = status(symbol), let holder = status.node else { return false }
            return status.assignedTo == holder && quoted.contains(symbol)
        }
    }
}

/// One applied fault's context: what recovery means for it.
public struct FaultContext: Sendable, Hashable {
    public var fault: PlannedFault
    public var atMs: EpochMs
    /// Symbols whose quoting the fault disturbs and whose recovery is timed.
    public var affected: [String]
    /// Each symbol's fencing token just before the fault.
    public var tokensBefore: [String: Int64]
    /// The restarted process's pid before the fault (restart faults).
    public var pidBefore: Int32?
    /// The node the supervisor added (add).
    public var addedNode: String?
    /// Quotes still resting on the exchange when a lost quorum returned (quorum-loss).
    public var quotesRestingAtReturn: Int?

    public init(fault: PlannedFault, atMs: EpochMs, affected: [String], tokensBefore: [String: Int64], pidBefore: Int32? = nil, addedNode: String? = nil) {
        self.fault = fault
        self.atMs = atMs
        self.affected = affected
        self.tokensBefore = tokensBefore
        self.pidBefore = pidBefore
        self.addedNode = addedNode
    }

    /// Which symbols a fault disturbs, judged from the observation just before it: a node
    /// fault those the node holds; anything else every symbol.
    public static func affectedSymbols(of fault: PlannedFault, before: ClusterObservation, symbols: [String]) -> [String] {
        if fault.kind.targetsHost {
            // The symbols the host's nodes hold; its services' loss is felt through them too.
            let victims = Set(fault.targets ?? [])
            return symbols.filter { before.status($0)?.node.map(victims.contains) ?? false }
        }
        guard fault.kind.targetsNode, let target = fault.target else { return symbols }
        // (Service faults disturb every symbol: each is timed.)
        return symbols.filter { before.status($0)?.node == target }
    }

    /// Recovered: the fault's own effect is visible (restarted process has a new pid and runs;
    /// added node is a live member; removed node is not) and every affected symbol is held by
    /// its assignee and quoted by it under its current token, with either a newer token than
    /// before the fault or a quote refreshed after it: a leftover quote of a dead or paused
    /// holder never counts as recovered.
    public func isRecovered(_ observation: ClusterObservation) -> Bool {
        guard let authority = observation.authority, observation.quotes != nil, observation.members != nil else { return false }
        switch fault.kind {
        case .restartState, .restartExchange, .restartCoordinator, .restartPostgres:
            guard let name = fault.kind.restartedProcess, let process = observation.process(name), process.state == .running,
                  let pid = process.pid, pid != pidBefore
            else { return false }
        case .add:
            guard let added = addedNode, observation.aliveMembers.contains(added) else { return false }
        case .remove:
            guard let target = fault.target, !observation.aliveMembers.contains(target) else { return false }
        case .killCoordinator, .killEtcd, .killPostgres, .killState:
            // The killed replica, member or server is back (the supervisor restarted it).
            guard let target = fault.target, let process = observation.process(target), process.state == .running,
                  let pid = process.pid, pid != pidBefore
            else { return false }
        case .kill, .stop, .stopCoordinator, .quorumLoss, .partitionHost, .killHost:
            break
        }
        let victims = Set(victimNodes)
        let quoted = observation.quotedSymbols(fallbackAuthority: nil)
        for symbol in affected {
            guard let status = authority.authority.first(where: { $0.symbol == symbol }), let holder = status.node,
                  status.assignedTo == holder, quoted.contains(symbol), let quote = observation.quote(symbol)
            else { return false }
            if fault.kind == .stop, holder == fault.target { return false }
            // A cut-off or dead host's node never counts as the recovered holder.
            if fault.kind.targetsHost, victims.contains(holder) { return false }
            let newerToken = status.fencingToken > (tokensBefore[symbol] ?? 0)
            if !newerToken && quote.updatedAtMs < atMs { return false }
        }
        return true
    }

    /// The victim's pre-fault quote on `symbol` is still resting (kill/stop): same node, not
    /// refreshed since the fault.
    public func orphanQuoteRests(symbol: String, in observation: ClusterObservation) -> Bool {
        guard let quote = observation.quote(symbol) else { return false }
        return victimNodes.contains(quote.node) && quote.updatedAtMs <= atMs
    }

    /// The nodes whose quotes the fault orphans: the node of kill/stop, a host's nodes.
    public var victimNodes: [String] {
        fault.kind.targetsHost ? (fault.targets ?? []) : (fault.target.map { [$0] } ?? [])
    }
}

/// Tracks, from a stream of observations, how long each symbol went without a quote from its
/// holder. Pure: time comes from the observations.
public struct QuoteGapTracker: Sendable {
    public struct Gap: Sendable, Hashable, Codable {
        public var symbol: String
        public var startMs: EpochMs
        public var endMs: EpochMs
        public var durationMs: Int64 { endMs - startMs }
    }

    public let symbols: [String]
    private var unquotedSince: [String: EpochMs] = [:]
    public private(set) var closedGaps: [Gap] = []
    public private(set) var lastObservedMs: EpochMs?

    public init(symbols: [String]) { self.symbols = symbols }

    /// A symbol unquoted at one poll and quoted at a later one was unquoted from the first such
    /// poll to the first quoted one (resolution: the poll interval).
    public mutating func observe(atMs: EpochMs, quoted: Set<String>) {
        for symbol in symbols {
            if quoted.contains(symbol) {
                if let since = unquotedSince.removeValue(forKey: symbol) {
                    closedGaps.append(Gap(symbol: symbol, startMs: since, endMs: atMs))
                }
            } else if unquotedSince[symbol] == nil {
                unquotedSince[symbol] = atMs
            }
        }
        lastObservedMs = atMs
    }

    /// Closed gaps plus the ones still open (ending at the last observation).
    public var allGaps: [Gap] {
        let end = lastObservedMs ?? 0
        return closedGaps + unquotedSince.map { Gap(symbol: $0.key, startMs: $0.value, endMs: end) }.sorted { $0.symbol < $1.symbol }
    }

    public var longest: Gap? { allGaps.max { $0.durationMs < $1.durationMs } }

    /// The longest gap of any of `symbols` that overlaps [fromMs, now].
    public func longestGap(of symbols: [String], since fromMs: EpochMs) -> Int64 {
        let wanted = Set(symbols)
        return allGaps.filter { wanted.contains($0.symbol) && $0.endMs >= fromMs }.map { $0.endMs - max($0.startMs, fromMs) }.max() ?? 0
    }
}
