import Foundation

/// The whole cluster's configuration: one value every process resolves identically from
/// (highest first) `--set key=value` flags, `MM_*` environment variables, the YAML file
/// and the embedded defaults below. `etc/mmctl.yaml` documents every key.
public struct ClusterConfig: Codable, Sendable, Hashable {
    public struct Listen: Codable, Sendable, Hashable {
        public var host: String
        /// supervisor = base, coordinator = base+1, state = base+2, exchange = base+3,
        /// gui = base+4, node nK = base+10+K.
        public var portBase: Int
    }

    public struct ExchangeSettings: Codable, Sendable, Hashable {
        /// One reference-price tick per interval since the exchange's first start.
        public var priceIntervalMs: Int64
        /// The reference price never leaves base ± band.
        public var priceBandTicks: Int64
        /// Largest move of one price tick.
        public var maxStepTicks: Int64
        /// Largest quantity one order or quote side may carry; more is rejected as absurd.
        public var maxOrderQty: Int64
        /// Largest price accepted, in ticks.
        public var maxPriceTicks: Int64
        /// A snapshot of the books is written every this many journal records (0: never), so
        /// a restart replays only the journal after it.
        public var snapshotEveryRecords: Int64 = 20_000
        /// Snapshots kept; the older ones are the fallback when the newest is damaged.
        public var snapshotKeep: Int64 = 2
        /// Whether journal records older than the oldest kept snapshot are deleted.
        public var journalRetain: JournalRetention = .all
    }

    public enum JournalRetention: String, Codable, Sendable, Hashable, CaseIterable {
        /// Keep every record: `mmd exchange replay` can rebuild the fill log from the start.
        case all
        /// Delete records covered by the oldest kept snapshot: the journal stays the size of
        /// a few snapshot intervals. Fills themselves stay in their own table.
        case snapshots
    }

    public struct FlowSettings: Codable, Sendable, Hashable {
        /// One external order per symbol every interval.
        public var intervalMs: Int64
        /// Percent of external orders priced to cross the market maker's quote.
        public var crossPct: Int64
        /// External order size is uniform in 1...max_qty lots.
        public var maxQty: Int64
    }

    public struct CoordinatorSettings: Codable, Sendable, Hashable {
        public var presenceTtlMs: Int64
        public var grantTtlMs: Int64
        /// Where authority decisions are kept: `embedded` (SQLite in the data directory, one
        /// process) or `etcd` (a transaction per decision, several replicas).
        public var backend: CoordinatorBackend
        /// Coordinator processes: 1 with `embedded`; with `etcd`, 3 unless set (1...5).
        public var replicas: Int
        public var etcd: EtcdSettings
        /// `coordinator.events.retain`: how many of the most recent events the event log keeps.
        /// Older ones are pruned in the background, in batches, after being folded into the
        /// log's compaction base (`GET /v1/events/base`), so memory and disk do not grow with
        /// history while `mmctl check` still judges every grant.
        public var eventsRetain: Int64

        public static let defaultEventsRetain: Int64 = 100_000

        public init(
            presenceTtlMs: Int64, grantTtlMs: Int64, backend: CoordinatorBackend = .embedded, replicas: Int = 1, etcd: EtcdSettings = EtcdSettings(),
            eventsRetain: Int64 = CoordinatorSettings.defaultEventsRetain
        ) {
            self.presenceTtlMs = presenceTtlMs
            self.grantTtlMs = grantTtlMs
            self.backend = backend
            self.replicas = replicas
            self.etcd = etcd
            self.eventsRetain = eventsRetain
        }

        private enum CodingKeys: String, CodingKey {
            case presenceTtlMs, grantTtlMs, backend, replicas, etcd, eventsRetain
        }

        // Written by hand only so an `effective-config.json` from before `events_retain`
        // existed still reads (as the default) instead of failing every mmctl command.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            presenceTtlMs = try container.decode(Int64.self, forKey: .presenceTtlMs)
            grantTtlMs = try container.decode(Int64.self, forKey: .grantTtlMs)
            backend = try container.decode(CoordinatorBackend.self, forKey: .backend)
            replicas = try container.decode(Int.self, forKey: .replicas)
            etcd = try container.decode(EtcdSettings.self, forKey: .etcd)
            eventsRetain = try container.decodeIfPresent(Int64.self, forKey: .eventsRetain) ?? Self.defaultEventsRetain
        }
    }

    public enum CoordinatorBackend: String, Codable, Sendable, Hashable, CaseIterable {
        case embedded, etcd
    }

    public struct EtcdSettings: Codable, Sendable, Hashable {
        /// Client URLs of an etcd 3.4+ cluster run by someone else. Empty: `mmctl start` runs
        /// `localMembers` etcd processes of its own (etcd1…), data under the data directory.
        public var endpoints: [String]
        /// Every key the coordinator writes starts with this; two clusters can share one etcd
        /// under different prefixes.
        public var prefix: String
        /// Members of the local etcd cluster (1, 3 or 5) when no endpoints are given.
        public var localMembers: Int
        /// Longest wait for one etcd request before the coordinator answers 503.
        public var requestTimeoutMs: Int64

        public init(endpoints: [String] = [], prefix: String = "/mm/", localMembers: Int = 3, requestTimeoutMs: Int64 = 1_000) {
            self.endpoints = endpoints
            self.prefix = prefix
            self.localMembers = localMembers
            self.requestTimeoutMs = requestTimeoutMs
        }
    }

    /// Where the trading-state ledger is kept.
    public struct StateSettings: Codable, Sendable, Hashable {
        public var backend: StateBackend
        /// State service processes (1...5; more than 1 needs postgres): every one serves reads,
        /// one at a time ingests (PostgreSQL advisory lock), another takes over when it dies.
        public var replicas: Int
        public var postgres: PostgresSettings

        public init(backend: StateBackend = .sqlite, replicas: Int = 1, postgres: PostgresSettings = PostgresSettings()) {
            self.backend = backend
            self.replicas = replicas
            self.postgres = postgres
        }
    }

    public enum StateBackend: String, Codable, Sendable, Hashable, CaseIterable {
        case sqlite, postgres
    }

    public struct PostgresSettings: Codable, Sendable, Hashable {
        /// `postgres://USER@HOST:PORT/DATABASE` of a server someone else runs (no password in
        /// it). Empty: `mmctl start` runs a local PostgreSQL 15 of its own.
        public var url: String
        /// A file holding the password (never on a command line, in a log or in status).
        /// Empty with a local server: the one `mmctl start` generated.
        public var passwordFile: String

        public init(url: String = "", passwordFile: String = "") {
            self.url = url
            self.passwordFile = passwordFile
        }
    }

    public struct NodeSettings: Codable, Sendable, Hashable {
        public var heartbeatIntervalMs: Int64
        /// Renew grants this often (a third of the grant TTL by default).
        public var renewIntervalMs: Int64
        /// The node treats its grant as expired this long before the coordinator would.
        public var safetyMarginMs: Int64
        /// Dead-man's switch armed at the exchange with every renewal round.
        public var deadmanTimeoutMs: Int64
        /// A quote is re-sent at least this often even when nothing changed.
        public var refreshIntervalMs: Int64
    }

    public struct QuotingParameters: Codable, Sendable, Hashable {
        /// Distance from bid to ask, in ticks, before skew.
        public var spreadTicks: Int64
        /// How far the quote centre moves against inventory at the position limit (linear).
        public var skewTicksAtLimit: Int64
        /// Lots per side.
        public var sizeLots: Int64
        /// At |net_qty| ≥ limit the side that would grow the position is withdrawn.
        public var positionLimitLots: Int64

        public init(spreadTicks: Int64, skewTicksAtLimit: Int64, sizeLots: Int64, positionLimitLots: Int64) {
            self.spreadTicks = spreadTicks
            self.skewTicksAtLimit = skewTicksAtLimit
            self.sizeLots = sizeLots
            self.positionLimitLots = positionLimitLots
        }
    }

    public struct SupervisorSettings: Codable, Sendable, Hashable {
        public var backoffInitialMs: Int64
        public var backoffMaxMs: Int64
        /// A process up this long has its backoff reset.
        public var stableAfterMs: Int64
        /// More than max_restarts restarts within restart_period_ms ⇒ fatal.
        public var maxRestarts: Int64
        public var restartPeriodMs: Int64
        public var stopGraceMs: Int64
        public var readyTimeoutMs: Int64
        public var logMaxBytes: Int64
        public var logKeep: Int64
    }

    /// One machine of the cluster: the name placement uses and the address its processes
    /// listen on (and are reached at).
    public struct HostSpec: Codable, Sendable, Hashable {
        public var name: String
        public var address: String

        public init(name: String, address: String) {
            self.name = name
            self.address = address
        }
    }

    public struct Placement: Codable, Sendable, Hashable {
        /// Process name → host name (`placement.exchange: a`, `placement.coordinator2: b`, `placement.n3: c`).
        public var processes: [String: String] = [:]
        /// Nodes not named in `processes` go round-robin over these hosts (n1 on the first).
        public var nodes: [String] = []
        /// Every process named nowhere else; empty means the first host.
        public var defaultHost: String = ""

        public init(processes: [String: String] = [:], nodes: [String] = [], defaultHost: String = "") {
            self.processes = processes
            self.nodes = nodes
            self.defaultHost = defaultHost
        }
    }

    /// `tls.cert`, `tls.key`, `tls.ca`: PEM files. `{host}` in a path is replaced by the name of
    /// the host a process runs on, so one file serves every host (`/etc/mm/tls/{host}.crt`).
    public struct TLSSettings: Codable, Sendable, Hashable {
        public var cert: String = ""
        public var key: String = ""
        public var ca: String = ""

        public init(cert: String = "", key: String = "", ca: String = "") {
            self.cert = cert
            self.key = key
            self.ca = ca
        }

        public var isEnabled: Bool { !cert.isEmpty && !key.isEmpty && !ca.isEmpty }

        public func certPath(host: String) -> String { cert.replacingOccurrences(of: "{host}", with: host) }
        public func keyPath(host: String) -> String { key.replacingOccurrences(of: "{host}", with: host) }
    }

    public struct HTTPSettings: Codable, Sendable, Hashable {
        public var maxBodyBytes: Int
        public var clientTimeoutMs: Int64
    }

    public var seed: Int64
    public var listen: Listen
    public var nodeCount: Int
    public var symbols: [SymbolSpec]
    public var exchange: ExchangeSettings
    public var flow: FlowSettings
    public var coordinator: CoordinatorSettings
    public var state = StateSettings()
    public var node: NodeSettings
    public var quoting: QuotingParameters
    public var supervisor: SupervisorSettings
    public var http: HTTPSettings
    /// The machines of a multi-host cluster by name (`hosts: {a: 10.0.0.1}`), in name order.
    /// Empty: one host, every process on `listen.host`.
    public var hosts: [HostSpec] = []
    /// Which host runs which process (only with `hosts`).
    public var placement = Placement()
    /// HTTPS between every process when set (cert, key and CA all given).
    public var tls = TLSSettings()

    public var symbolNames: [String] { symbols.map(\.symbol) }
    public func symbol(_ name: String) -> SymbolSpec? { symbols.first { $0.symbol == name } }

    /// SHA-256 of the canonical JSON, shown by `GET /v1/info` so an operator can see that
    /// every process runs the same configuration.
    public var digest: String {
        (try? MMJSON.encode(self)).map { sha256Hex($0) } ?? "unencodable"
    }
}

// MARK: - Ports and process names

/// The processes of a cluster, by the names `mmctl` and the logs use.
public enum ClusterProcess: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The coordinator, or its first replica when there are several.
    case coordinator
    /// Coordinator replica 2…5 (`coordinator2`…).
    case coordinatorReplica(Int)
    /// A member of the local etcd cluster `mmctl` runs for the etcd backend (`etcd1`…).
    case etcd(Int)
    /// The local PostgreSQL `mmctl` runs for `state.backend: postgres` without a url.
    case postgres
    /// Trading-state replica 2…5 (`state2`…; `state` is replica 1).
    case stateReplica(Int)
    case state, exchange, gui
    case node(Int)

    public static let maxCoordinatorReplicas = 5
    public static let maxEtcdMembers = 5
    public static let maxStateReplicas = 5

    /// The state process of replica `index` (1-based).
    public static func state(replica index: Int) -> ClusterProcess { index <= 1 ? .state : .stateReplica(index) }

    /// Replica number of a state process (1 for `state`), nil for the others.
    public var stateReplicaIndex: Int? {
        switch self {
        case .state: 1
        case .stateReplica(let index): index
        default: nil
        }
    }

    public var name: String {
        switch self {
        case .coordinator: "coordinator"
        case .coordinatorReplica(let index): "coordinator\(index)"
        case .etcd(let index): "etcd\(index)"
        case .postgres: "postgres"
        case .stateReplica(let index): "state\(index)"
        case .state: "state"
        case .exchange: "exchange"
        case .gui: "gui"
        case .node(let index): "n\(index)"
        }
    }

    /// The role string of `processes[].role` in `mmctl status --json`.
    public var role: String {
        switch self {
        case .node: "node"
        case .coordinatorReplica: "coordinator"
        case .stateReplica: "state"
        case .etcd: "etcd"
        default: name
        }
    }

    /// Replica number of a coordinator process (1 for `coordinator`), nil for the others.
    public var coordinatorReplicaIndex: Int? {
        switch self {
        case .coordinator: 1
        case .coordinatorReplica(let index): index
        default: nil
        }
    }

    /// The coordinator process of replica `index` (1-based).
    public static func coordinator(replica index: Int) -> ClusterProcess { index <= 1 ? .coordinator : .coordinatorReplica(index) }

    /// Whether the supervisor runs `mmd` for it (etcd members run Debian's `etcd`).
    public var isMMD: Bool {
        if case .etcd = self { return false }
        return true
    }

    public var description: String { name }

    public init?(name: String) {
        switch name {
        case "coordinator": self = .coordinator
        case "state": self = .state
        case "exchange": self = .exchange
        case "gui": self = .gui
        case "postgres": self = .postgres
        default:
            if name.hasPrefix("coordinator"), let index = Int(name.dropFirst("coordinator".count)), (2...Self.maxCoordinatorReplicas).contains(index) {
                self = .coordinatorReplica(index)
            } else if name.hasPrefix("state"), let index = Int(name.dropFirst(5)), (2...Self.maxStateReplicas).contains(index) {
                self = .stateReplica(index)
            } else if name.hasPrefix("etcd"), let index = Int(name.dropFirst(4)), (1...Self.maxEtcdMembers).contains(index) {
                self = .etcd(index)
            } else if name.hasPrefix("n"), let index = Int(name.dropFirst()), index >= 1, index <= ClusterConfig.maxNodes {
                self = .node(index)
            } else {
                return nil
            }
        }
    }

    /// Start order; stop order is the reverse (etcd members stop after every coordinator).
    private var rank: Int {
        switch self {
        case .etcd(let index): -10 + index
        case .coordinator: 0
        case .coordinatorReplica(let index): index
        case .postgres: 15
        case .state: 20
        case .stateReplica(let index): 20 + index
        case .exchange: 30
        case .node(let index): 100 + index
        case .gui: 10_000
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

extension ClusterConfig {
    public static let maxNodes = 64

    public var supervisorPort: Int { listen.portBase }

    public func port(of process: ClusterProcess) -> Int {
        switch process {
        case .coordinator: listen.portBase + 1
        case .coordinatorReplica(let index): listen.portBase + 3 + index
        case .etcd(let index): listen.portBase + 80 + index
        case .postgres: listen.portBase + 9
        case .stateReplica(let index): listen.portBase + 75 + index
        case .state: listen.portBase + 2
        case .exchange: listen.portBase + 3
        case .gui: listen.portBase + 4
        case .node(let index): listen.portBase + 10 + index
        }
    }

    /// `https` when TLS is configured. etcd members (and PostgreSQL) are not ours to serve TLS:
    /// their URLs stay plain (see docs/DEPLOYING.md).
    public var scheme: String { tls.isEnabled ? "https" : "http" }

    public func baseURL(of process: ClusterProcess) -> String {
        if case .etcd = process { return "http://\(Self.urlHost(address(of: process))):\(port(of: process))" }
        return "\(scheme)://\(Self.urlHost(address(of: process))):\(port(of: process))"
    }

    /// The supervisor of the only host (single-host clusters) or of the first host.
    public var supervisorURL: String { supervisorURL(host: hostNames[0]) }

    /// The supervisor of host `host`: it runs and answers for that host's processes only.
    public func supervisorURL(host: String) -> String { "\(scheme)://\(Self.urlHost(address(ofHost: host))):\(supervisorPort)" }

    /// An IPv6 address goes in brackets in a URL.
    public static func urlHost(_ address: String) -> String { address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address }

    /// The name a single-host cluster's one host goes by (in status and `--host`).
    public static let localHostName = "local"

    /// Whether `hosts` places processes on several machines.
    public var isMultiHost: Bool { !hosts.isEmpty }

    /// Every host's name: the configured ones in order, or `local`.
    public var hostNames: [String] { hosts.isEmpty ? [Self.localHostName] : hosts.map(\.name) }

    /// The host that runs `process`: its own placement, else (a node) the node round-robin,
    /// else the default host, else the first.
    public func hostName(of process: ClusterProcess) -> String {
        guard isMultiHost else { return Self.localHostName }
        if let host = placement.processes[process.name] { return host }
        if case .node(let index) = process, !placement.nodes.isEmpty { return placement.nodes[(index - 1) % placement.nodes.count] }
        return placement.defaultHost.isEmpty ? hosts[0].name : placement.defaultHost
    }

    /// The address host `host` listens on (`listen.host` for a single-host cluster).
    public func address(ofHost host: String) -> String {
        hosts.first { $0.name == host }?.address ?? listen.host
    }

    /// The address `process` listens on and is reached at.
    public func address(of process: ClusterProcess) -> String { address(ofHost: hostName(of: process)) }

    /// The processes of a cluster with `nodeCount` nodes that host `host` runs, in start order.
    public func processes(onHost host: String, nodeCount: Int) -> [ClusterProcess] {
        processes(nodeCount: nodeCount).filter { hostName(of: $0) == host }
    }

    /// The peer (raft) port of local etcd member `index`; its client port is `port(of: .etcd(index))`.
    public func etcdPeerPort(_ index: Int) -> Int { listen.portBase + 90 + index }

    /// Every coordinator process, replica 1 first.
    public var coordinatorProcesses: [ClusterProcess] {
        (1...max(coordinator.replicas, 1)).map { ClusterProcess.coordinator(replica: $0) }
    }

    /// Every coordinator replica's base URL, in replica order: clients use the first that
    /// answers and move to the next when it stops answering.
    public var coordinatorURLs: [String] { coordinatorProcesses.map { baseURL(of: $0) } }

    /// True when `mmctl start` runs etcd itself (etcd backend, no external endpoints).
    public var runsLocalEtcd: Bool { coordinator.backend == .etcd && coordinator.etcd.endpoints.isEmpty }

    /// The local etcd members `mmctl start` runs (none unless `runsLocalEtcd`).
    public var etcdProcesses: [ClusterProcess] {
        runsLocalEtcd ? (1...max(coordinator.etcd.localMembers, 1)).map { .etcd($0) } : []
    }

    /// The etcd client URLs the coordinator uses: the configured ones, or the local members'.
    public var etcdEndpoints: [String] {
        coordinator.etcd.endpoints.isEmpty ? etcdProcesses.map { baseURL(of: $0) } : coordinator.etcd.endpoints
    }

    /// True when `mmctl start` runs PostgreSQL itself (postgres backend, no url).
    public var runsLocalPostgres: Bool { state.backend == .postgres && state.postgres.url.isEmpty }

    /// The local PostgreSQL `mmctl start` runs (none unless `runsLocalPostgres`).
    public var postgresProcesses: [ClusterProcess] { runsLocalPostgres ? [.postgres] : [] }

    /// The URL of the ledger's PostgreSQL: the configured one, or the local server's.
    public var statePostgresURL: String {
        state.postgres.url.isEmpty ? "postgres://postgres@\(Self.urlHost(address(of: .postgres))):\(port(of: .postgres))/postgres" : state.postgres.url
    }

    /// Every trading-state process, replica 1 first.
    public var stateProcesses: [ClusterProcess] { (1...max(state.replicas, 1)).map { ClusterProcess.state(replica: $0) } }

    /// Every state replica's base URL: clients use the first that answers.
    public var stateURLs: [String] { stateProcesses.map { baseURL(of: $0) } }

    /// The processes of the cluster apart from its nodes and GUI, in start order.
    public var coreProcesses: [ClusterProcess] { etcdProcesses + coordinatorProcesses + postgresProcesses + stateProcesses + [.exchange] }

    /// Every process of a cluster with `nodeCount` nodes, in start order.
    public var processes: [ClusterProcess] { processes(nodeCount: nodeCount) }

    public func processes(nodeCount: Int) -> [ClusterProcess] {
        coreProcesses + (1...max(nodeCount, 1)).map { .node($0) } + [.gui]
    }
}
