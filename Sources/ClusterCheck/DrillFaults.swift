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

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Faults aimed at one node process.
    public var targetsNode: Bool { self == .kill || self == .stop || self == .remove }

    /// The supervisor's process name a restart fault restarts.
    public var restartedProcess: String? {
        switch self {
        case .restartState: "state"
        case .restartExchange: "exchange"
        case .restartCoordinator: "coordinator"
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
    /// The node for kill/stop/remove; nil otherwise.
    public var target: String?

    public init(kind: FaultKind, target: String?) {
        self.kind = kind
        self.target = target
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

    public func applicable(runningNodes: [String]) -> [FaultKind] {
        enabled.filter { kind in
            switch kind {
            case .kill, .stop, .remove: runningNodes.count >= minimumNodes
            case .add: runningNodes.count < maximumNodes
            default: true
            }
        }
    }

    /// nil when no enabled fault is applicable to the cluster as it is. `holdings` (symbols
    /// held per node) matters only to `.busiest` targeting.
    public func next(using generator: inout SeededGenerator, runningNodes: [String], holdings: [String: Int] = [:]) -> PlannedFault? {
        let choices = applicable(runningNodes: runningNodes)
        guard !choices.isEmpty else { return nil }
        let kind = choices[generator.index(below: choices.count)]
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
