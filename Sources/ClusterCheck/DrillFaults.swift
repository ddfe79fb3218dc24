import MMCore

/// The faults `mmctl drill` can inject, by their `--faults` names.
public enum FaultKind: String, Codable, Sendable, CaseIterable, Comparable {
    /// SIGKILL a random node (the supervisor restarts it).
    case kill
    /// SIGSTOP a random node past the grant TTL, then SIGCONT: the paused holder must be fenced out.
    case stop
    case restartState = "restart-state"
    case restartExchange = "restart-exchange"
    case restartCoordinator = "restart-coordinator"
    /// Add one node (the supervisor spawns it; symbols move to it).
    case add
    /// Remove one node gracefully (its symbols move away).
    case remove
    /// SIGKILL one coordinator replica (etcd backend): the others carry on at once.
    case killCoordinator = "kill-coordinator"
    /// SIGSTOP one coordinator replica past the grant TTL, then SIGCONT.
    case stopCoordinator = "stop-coordinator"
    /// SIGKILL one member of the local etcd cluster (quorum kept; the supervisor restarts it).
    case killEtcd = "kill-etcd"
    /// SIGSTOP a majority of the local etcd members until every grant has lapsed and the
    /// dead-man's switch has fired, then SIGCONT: nothing may be granted meanwhile.
    case quorumLoss = "quorum-loss"
    /// SIGKILL the local PostgreSQL under the ledger (state.backend=postgres): it recovers by
    /// WAL replay; the check must still find every fill exactly once.
    case killPostgres = "kill-postgres"
    /// Restart the local PostgreSQL gracefully through the supervisor.
    case restartPostgres = "restart-postgres"
    /// SIGKILL one state replica (2+ replicas on PostgreSQL): another one takes over ingest.
    case killState = "kill-state"
    /// Cut one host off the network (`--host-fault-command H partition HOST`) past the grant
    /// TTL and the dead-man's switch, then heal it: its nodes' symbols move, their quotes are
    /// withdrawn by the exchange, and nothing they sent meanwhile may count.
    case partitionHost = "partition-host"
    /// SIGKILL every process of one host, its supervisor included (a power loss), then start
    /// the host again (`--host-fault-command … kill-host HOST`, then `start-host HOST`).
    case killHost = "kill-host"

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Faults aimed at one node process.
    public var targetsNode: Bool { self == .kill || self == .stop || self == .remove }

    /// Faults aimed at a coordinator replica or etcd member (chosen by the planner).
    public var targetsService: Bool { [.killCoordinator, .stopCoordinator, .killEtcd, .killPostgres, .killState].contains(self) }

    /// Faults that pause their target(s) past the grant TTL before resuming them.
    public var pauses: Bool { self == .stop || self == .stopCoordinator || self == .quorumLoss || self == .partitionHost }

    /// Faults aimed at a whole host (several hosts, and a `--host-fault-command`).
    public var targetsHost: Bool { self == .partitionHost || self == .killHost }

    /// The supervisor's process name a restart fault restarts.
    public var restartedProcess: String? {
        switch self {
        case .restartState: "state"
        case .restartExchange: "exchange"
        case .restartCoordinator: "coordinator"
        case .restartPostgres: "postgres"
        default: nil
        }
    }

    /// Parses `kill,stop,…`, naming the first unknown entry.
    public static func parseList(_ text: String) throws(SetupError) -> [FaultKind] {
        var kinds: [FaultKind] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let kind = FaultKind(rawValue: part) else {
                throw SetupError("unknown fault '\(part)'; choose from \(FaultKind.allCases.map(\.rawValue).joined(separator: ","))")
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        guard !kinds.isEmpty else { throw SetupError("--faults names no fault") }
        return kinds
    }
}

/// The drill's fault sequence comes from MMCore's SplitMix64: same seed, same faults everywhere.
public typealias SeededGenerator = SplitMix64

public struct PlannedFault: Sendable, Hashable, Codable {
    public var kind: FaultKind
    /// The node for kill/stop/remove, the replica or member for service faults; nil otherwise.
    public var target: String?
    /// Every process a quorum loss pauses (a majority of the etcd members).
    public var targets: [String]?

    public init(kind: FaultKind, target: String?, targets: [String]? = nil) {
        self.kind = kind
        self.target = target
        self.targets = targets
    }
}

/// The coordinator replicas and etcd members a service fault may hit, by supervisor name.
public struct ServiceTargets: Sendable, Hashable {
    public var coordinators: [String]
    public var etcdMembers: [String]
    /// Whether the cluster runs a local PostgreSQL (`postgres`).
    public var postgres: Bool
    /// Running state replicas (`state`, `state2`…).
    public var stateReplicas: [String]
    /// Hosts the cluster is built to lose (see `expendableHosts`), with the nodes each runs;
    /// empty unless a host-fault command was given.
    public var hosts: [String: [String]]

    public init(coordinators: [String] = [], etcdMembers: [String] = [], postgres: Bool = false, stateReplicas: [String] = [], hosts: [String: [String]] = [:]) {
        self.coordinators = coordinators
        self.etcdMembers = etcdMembers
        self.postgres = postgres
        self.stateReplicas = stateReplicas
        self.hosts = hosts
    }

    /// The hosts whose loss the cluster survives: no exchange, GUI, local PostgreSQL or first
    /// state replica on it (no peer takes over those), another host runs a coordinator, a
    /// majority of the local etcd members runs elsewhere, and some node runs elsewhere. Each
    /// with the nodes placed on it (of `nodeCount`).
    public static func expendableHosts(config: ClusterConfig, nodeCount: Int) -> [String: [String]] {
        guard config.isMultiHost else { return [:] }
        var result: [String: [String]] = [:]
        let everything = config.processes(nodeCount: nodeCount)
        for host in config.hostNames {
            let here = everything.filter { config.hostName(of: $0) == host }
            let elsewhere = everything.filter { config.hostName(of: $0) != host }
            if here.contains(where: { [.exchange, .gui, .postgres, .state].contains($0) }) { continue }
            guard elsewhere.contains(where: { $0.coordinatorReplicaIndex != nil }) else { continue }
            let members = everything.filter { if case .etcd = $0 { true } else { false } }
            let membersHere = here.filter { if case .etcd = $0 { true } else { false } }
            if !members.isEmpty, (members.count - membersHere.count) * 2 <= members.count { continue }
            guard elsewhere.contains(where: { if case .node = $0 { true } else { false } }) else { continue }
            result[host] = here.compactMap { if case .node = $0 { $0.name } else { nil } }
        }
        return result
    }
}

/// Chooses the next fault. Pure: the same generator state, enabled set and node list give the
/// same fault. Node faults need a survivor to fail over to, so they are skipped while fewer
/// than `minimumNodes` nodes run; `add` is skipped at `maximumNodes`.
public struct FaultPlanner: Sendable {
    /// Which running node a node fault hits.
    public enum Targeting: String, Sendable, Hashable, CaseIterable {
        /// Chosen by the seeded generator.
        case random
        /// The node holding the most symbols (ties: the lowest ordinal): the worst case for a failover.
        case busiest
    }

    public var enabled: [FaultKind]
    public var minimumNodes: Int
    public var maximumNodes: Int
    public var targeting: Targeting

    public init(enabled: [FaultKind], minimumNodes: Int = 2, maximumNodes: Int, targeting: Targeting = .random) {
        self.enabled = enabled.sorted()
        self.minimumNodes = minimumNodes
        self.maximumNodes = maximumNodes
        self.targeting = targeting
    }

    public func applicable(runningNodes: [String], services: ServiceTargets = ServiceTargets()) -> [FaultKind] {
        enabled.filter { kind in
            switch kind {
            case .kill, .stop, .remove: runningNodes.count >= minimumNodes
            case .add: runningNodes.count < maximumNodes
            // A replica fault is about failing over to another replica.
            case .killCoordinator, .stopCoordinator: services.coordinators.count >= 2
            // One member down keeps a quorum only from three members on.
            case .killEtcd, .quorumLoss: services.etcdMembers.count >= 3
            case .killPostgres, .restartPostgres: services.postgres
            case .killState: services.stateReplicas.count >= 2
            case .partitionHost, .killHost: !services.hosts.isEmpty
            default: true
            }
        }
    }

    /// nil when no enabled fault is applicable to the cluster as it is. `holdings` (symbols
    /// held per node) matters only to `.busiest` targeting.
    public func next(
        using generator: inout SeededGenerator, runningNodes: [String], holdings: [String: Int] = [:], services: ServiceTargets = ServiceTargets()
    ) -> PlannedFault? {
        let choices = applicable(runningNodes: runningNodes, services: services)
        guard !choices.isEmpty else { return nil }
        let kind = choices[generator.index(below: choices.count)]
        switch kind {
        case .killCoordinator, .stopCoordinator:
            let replicas = services.coordinators.sorted()
            return PlannedFault(kind: kind, target: replicas[generator.index(below: replicas.count)])
        case .killEtcd:
            let members = services.etcdMembers.sorted()
            return PlannedFault(kind: kind, target: members[generator.index(below: members.count)])
        case .killPostgres:
            return PlannedFault(kind: kind, target: "postgres")
        case .killState:
            let replicas = services.stateReplicas.sorted()
            return PlannedFault(kind: kind, target: replicas[generator.index(below: replicas.count)])
        case .partitionHost, .killHost:
            let hosts = services.hosts.keys.sorted()
            let host = hosts[generator.index(below: hosts.count)]
            return PlannedFault(kind: kind, target: host, targets: services.hosts[host]?.sorted())
        case .quorumLoss:
            // A majority, starting at a seeded member: the rest cannot elect or commit.
            let members = services.etcdMembers.sorted()
            let first = generator.index(below: members.count)
            let paused = (0..<(members.count / 2 + 1)).map { members[(first + $0) % members.count] }
            return PlannedFault(kind: kind, target: nil, targets: paused.sorted())
        default:
            break
        }
        guard kind.targetsNode else { return PlannedFault(kind: kind, target: nil) }
        let nodes = runningNodes.sorted { nodeOrdinal($0) < nodeOrdinal($1) }
        // The generator is drawn from either way, so the fault kinds of a seed do not depend on the targeting.
        let drawn = nodes[generator.index(below: nodes.count)]
        switch targeting {
        case .random:
            return PlannedFault(kind: kind, target: drawn)
        case .busiest:
            let busiest = nodes.max { (holdings[$0] ?? 0, -nodeOrdinal($0).0) < (holdings[$1] ?? 0, -nodeOrdinal($1).0) }
            return PlannedFault(kind: kind, target: busiest ?? drawn)
        }
    }

    private func nodeOrdinal(_ name: String) -> (Int, String) {
        (Int(name.dropFirst()) ?? Int.max, name)
    }
}
