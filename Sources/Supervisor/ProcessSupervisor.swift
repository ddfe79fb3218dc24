import Foundation
import Logging
import MMCore
import MMServiceKit
import ProcessKit

/// How the supervisor starts its children: the `mmd` binary and the arguments every child
/// gets so that all of them resolve the same configuration; the `etcd` binary for the members
/// of a local etcd cluster.
public struct ChildLaunchSettings: Sendable {
    public var mmdPath: String
    public var configPath: String?
    /// Raw `key=value` overrides, passed to every child as `--set`.
    public var overrides: [String]
    /// The `etcd` local members run; nil when none is installed (starting one then fails
    /// with `EtcdProgram.notInstalled`).
    public var etcdPath: String?

    public init(mmdPath: String, configPath: String?, overrides: [String], etcdPath: String? = EtcdProgram.locate()) {
        self.mmdPath = mmdPath
        self.configPath = configPath
        self.overrides = overrides
        self.etcdPath = etcdPath
    }

    /// The child's argv; argv[0] is the program to spawn.
    ///
    /// An `mmd` child gets `--supervised-by`, which makes it arm its parent-death signal, and
    /// `--exit-with-parent`, which makes it exit on stdin EOF: two independent ways for it to
    /// end with the supervisor. etcd has neither, so an etcd member is started as
    /// `mmd exec --supervised-by PID -- etcd …`: mmd arms the parent-death signal, which
    /// survives execve, and becomes etcd (same pid, same process group).
    func arguments(
        for process: ClusterProcess, config: ClusterConfig, dataDirectory: DataDirectory, incarnation: String, supervisorPid: Int32 = getpid()
    ) throws(SupervisorError) -> [String] {
        if case .etcd(let member) = process {
            guard let etcdPath else { throw .io(EtcdProgram.notInstalled) }
            return [mmdPath, "exec", "--supervised-by", "\(supervisorPid)", "--", etcdPath]
                + Self.etcdArguments(member: member, config: config, dataDirectory: dataDirectory)
        }
        var arguments = [mmdPath]
        switch process {
        case .exchange: arguments += ["exchange", "serve"]
        case .node: arguments += ["node", "--id", process.name, "--incarnation", incarnation]
        case .coordinator, .coordinatorReplica: arguments += ["coordinator", "--replica", "\(process.coordinatorReplicaIndex ?? 1)"]
        case .stateReplica(let index): arguments += ["state", "serve", "--replica", "\(index)"]
        default: arguments.append(process.name)
        }
        if let configPath { arguments += ["--config", configPath] }
        arguments += ["--data-dir", dataDirectory.path]
        for override in overrides { arguments += ["--set", override] }
        arguments += ["--exit-with-parent", "--supervised-by", "\(supervisorPid)"]
        return arguments
    }

    /// etcd's own flags for local member `member` (1-based) of `config`'s local etcd cluster:
    /// its data under DATA_DIR/etcd/etcdK, its client and peer ports from `listen.port_base`,
    /// a cluster token unique to the port base, so two local clusters never join each other.
    static func etcdArguments(member: Int, config: ClusterConfig, dataDirectory: DataDirectory) -> [String] {
        // Each member at its own host's address: a local etcd cluster may span hosts.
        func peerURLOf(_ index: Int) -> String { "http://\(ClusterConfig.urlHost(config.address(of: .etcd(index)))):\(config.etcdPeerPort(index))" }
        let name = ClusterProcess.etcd(member).name
        let clientURL = config.baseURL(of: .etcd(member))
        let peerURL = peerURLOf(member)
        let initialCluster = (1...max(1, config.coordinator.etcd.localMembers))
            .map { "\(ClusterProcess.etcd($0).name)=\(peerURLOf($0))" }
            .joined(separator: ",")
        return [
            "--name", name, "--data-dir", dataDirectory.etcdDataPath(name),
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "mm-\(config.listen.portBase)",
            // Loopback members: a 50 ms heartbeat and 500 ms election timeout, and pre-vote so
            // a member cut off alone does not inflate the term and depose the leader when the
            // others come back (measured: quorum back → first write 30–800 ms, 0.4–2.2 s with
            // 100/1000 and no pre-vote; docs/PERFORMANCE.md).
            "--heartbeat-interval", "50", "--election-timeout", "500", "--pre-vote",
            // Every heartbeat and renewal is a revision: keep the last 10,000 (minutes of
            // history at cluster rates), so the store stays small however long it runs.
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000",
            "--logger", "zap", "--log-level", "warn",
        ]
    }
}

/// Where the `etcd` of local members comes from.
public enum EtcdProgram {
    /// `$ETCD_BINARY`, else `etcd` on `$PATH`, else Debian's /usr/bin/etcd; nil when none is an
    /// executable file.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let configured = environment["ETCD_BINARY"], !configured.isEmpty {
            return FileManager.default.isExecutableFile(atPath: configured) ? configured : nil
        }
        let directories = (environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        return directories.lazy.map { ($0 as NSString).appendingPathComponent("etcd") }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static let notInstalled =
        "etcd is not installed (no etcd on $PATH or at /usr/bin/etcd), and coordinator.backend=etcd with no coordinator.etcd.endpoints runs a local etcd cluster: "
        + "run Scripts/install-deps (it installs Debian's etcd-server, etcd 3.4), set ETCD_BINARY to an etcd 3.4+ binary, "
        + "or point coordinator.etcd.endpoints at an etcd cluster you run"
}

/// Why a control request was refused: rendered as the error envelope.
enum ControlError {
    static func unknownProcess(_ name: String) -> APIError {
        APIError(status: 404, code: "unknown_process", message: "no process '\(name)' in this cluster (see GET /v1/processes)", details: ["name": name])
    }
    static func notANode(_ name: String) -> APIError {
        APIError(status: 400, code: "not_a_node", message: "'\(name)' is not a market-maker node; only nodes (n1, n2, …) can be removed", details: ["name": name])
    }
    static func nodeLimit(_ limit: Int) -> APIError {
        APIError(status: 409, code: "node_limit", message: "the cluster already runs the maximum of \(limit) nodes")
    }
    static func portInUse(_ name: String, _ port: Int) -> APIError {
        APIError(status: 409, code: "port_in_use", message: "port \(port) for \(name) is taken by another program; free it and retry", details: ["port": "\(port)"])
    }
    static let shuttingDown = APIError(status: 409, code: "shutting_down", message: "the supervisor is shutting the cluster down")
    static let starting = APIError(status: 409, code: "starting", message: "the cluster is still starting; retry when 'mmctl start' has returned")
    static func invalidSignal(_ signal: String) -> APIError {
        APIError.invalidField("signal", "must be one of KILL, TERM, STOP, CONT (got '\(signal)')")
    }
}

/// The process tree: every child as a `ChildService`, started in dependency order (each
/// only after the previous one is ready), stopped in reverse (nodes together, as peers),
/// grown and shrunk by node add/remove. `run()` owns the children's tasks: when it returns,
/// every child has been reaped.
public actor ProcessSupervisor {
    public enum Phase: String, Sendable { case starting, running, stopping, stopped }

    let context: SupervisionContext
    public nonisolated let startedAtMs: EpochMs
    public nonisolated let journal: SupervisorJournal

    private var children: [ClusterProcess: ChildService] = [:]
    private let additions: AsyncStream<ChildService>
    private let addChild: AsyncStream<ChildService>.Continuation
    public private(set) var phase: Phase = .starting

    public init(
        config: ClusterConfig, dataDirectory: DataDirectory, launch: ChildLaunchSettings,
        spawner: any ChildSpawner = PosixChildSpawner(), probe: (any ReadinessProbe)? = nil,
        deathReporter: any DeathReporter = NoDeathReporter(), clock: any SupervisorClock = RealSupervisorClock(), logger: Logger,
        host: String? = nil
    ) {
        let journal = SupervisorJournal(clock: clock)
        let startedAtMs = clock.nowMs()
        self.context = SupervisionContext(
            config: config, dataDirectory: dataDirectory, launch: launch, policy: RestartPolicy(config.supervisor),
            spawner: spawner, probe: probe ?? HTTPReadinessProbe(config: config), deathReporter: deathReporter,
            clock: clock, journal: journal, logger: logger, incarnationPrefix: "\(startedAtMs)", host: host ?? config.hostNames[0])
        self.journal = journal
        self.startedAtMs = startedAtMs
        (additions, addChild) = AsyncStream.makeStream(of: ChildService.self)
    }

    // MARK: The tree's tasks

    /// Runs every child until `stopAll` has stopped them all.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await child in additions {
                group.addTask {
                    await child.run()
                    await self.childFinished(child)
                }
            }
        }
    }

    private func childFinished(_ child: ChildService) {
        if children[child.process] === child, child.isRemoving {
            children[child.process] = nil
            context.journal.record("remove", process: child.process, "\(child.process.name) removed from the cluster")
        }
        context.journal.changed()
    }

    private func launch(_ process: ClusterProcess, initialStart: Bool) -> ChildService {
        let child = ChildService(process: process, context: context)
        children[process] = child
        addChild.yield(child)
        child.begin(initialStart: initialStart)
        return child
    }

    // MARK: Inspection

    public func processList() -> ProcessList {
        let now = context.clock.nowMs()
        return ProcessList(
            supervisor: SupervisorInfo(pid: getpid(), uptimeMs: now - startedAtMs, startedAtMs: startedAtMs, phase: phase.rawValue),
            processes: children.keys.sorted().compactMap { children[$0]?.status(now: now) })
    }

    public func status(named name: String) throws(APIError) -> ProcessStatus {
        try child(named: name).status(now: context.clock.nowMs())
    }

    public nonisolated func eventPage(after seq: Int64, limit: Int) -> EventPage {
        journal.eventPage(.after(seq, limit: limit))
    }

    public nonisolated func eventPage(_ cursor: LogCursor) -> EventPage {
        journal.eventPage(cursor)
    }

    public func logPath(named name: String) throws(APIError) -> String {
        guard let process = ClusterProcess(name: name),
              children[process] != nil || FileManager.default.fileExists(atPath: context.dataDirectory.logPath(name)) else {
            throw ControlError.unknownProcess(name)
        }
        return context.dataDirectory.logPath(process.name)
    }

    /// Every child pid currently alive (for the final sweep and tests).
    public func livePids() -> [Int32] { children.values.compactMap(\.pid) }

    /// Returns once `predicate` holds for the process list (checked after every change).
    public nonisolated func waitUntil(_ predicate: @Sendable (ProcessList) -> Bool) async {
        while !Task.isCancelled {
            let seen = journal.changeCount
            if predicate(await processList()) { return }
            await journal.waitForChange(after: seen)
        }
    }

    private func child(named name: String) throws(APIError) -> ChildService {
        guard let process = ClusterProcess(name: name), let child = children[process] else { throw ControlError.unknownProcess(name) }
        return child
    }

    // MARK: Start and stop

    /// The host this supervisor runs the processes of.
    public nonisolated var host: String { context.host }

    /// Starts every process of this host in dependency order (`ClusterConfig.processes(onHost:nodeCount:)`), each
    /// only after the previous one is ready, except the members of a local etcd cluster: they
    /// start together and are awaited together, since no member is healthy (answers /health,
    /// or anything at all) before a quorum of them runs. Throws with the failing process's log
    /// tail; what was started keeps running until `stopAll` (the daemon always calls it).
    public func startAll(nodeCount: Int) async throws(SupervisorError) {
        let processes = context.config.processes(onHost: context.host, nodeCount: max(1, nodeCount))
        for tier in Self.startTiers(processes) {
            guard phase == .starting else { throw .io("stopped while starting (at \(tier[0].name))") }
            let started = tier.map { launch($0, initialStart: true) }
            for child in started { try await child.firstReady() }
        }
        guard phase == .starting else { throw .io("stopped while starting") }
        phase = .running
        context.journal.record("cluster_ready", process: nil, "all \(processes.count) processes are ready")
    }

    /// Start order in tiers: one process per tier, except that consecutive etcd members form
    /// one tier (none serves before a quorum runs) and so do the nodes: peers that depend
    /// only on the services started before them, so 20 nodes start in the time of one, not
    /// the sum of 20 (each waits for its first registration and assignment).
    static func startTiers(_ processes: [ClusterProcess]) -> [[ClusterProcess]] {
        var tiers: [[ClusterProcess]] = []
        for process in processes {
            if let last = tiers.last?.last, Self.startsWith(process, last) {
                tiers[tiers.count - 1].append(process)
            } else {
                tiers.append([process])
            }
        }
        return tiers
    }

    private static func startsWith(_ process: ClusterProcess, _ previous: ClusterProcess) -> Bool {
        switch (process, previous) {
        case (.etcd, .etcd), (.node, .node): true
        default: false
        }
    }

    /// Processes stopped together, as peers: the nodes. Not the etcd members: a leader that
    /// gets SIGTERM first hands its leadership to a follower, and waits up to etcd's request
    /// timeout (7 s here) for that when every follower is stopping too; one after the other,
    /// each leader finds a live follower and the last member has no quorum to lead.
    private static func samePeerTier(_ lhs: ClusterProcess, _ rhs: ClusterProcess) -> Bool {
        switch (lhs, rhs) {
        case (.node, .node): true
        default: false
        }
    }

    /// Stops every process in reverse start order (the nodes together, as peers; the etcd
    /// members last, one by one, after every coordinator): SIGTERM, SIGKILL after `graceMs`.
    /// Returns when every child has been reaped; `run()` then ends.
    public func stopAll(graceMs: Int64) async {
        guard phase != .stopping && phase != .stopped else {
            await waitUntil { $0.supervisor.phase == Phase.stopped.rawValue }
            return
        }
        phase = .stopping
        context.journal.record("shutdown", process: nil, "stopping every process (grace \(graceMs) ms each)")
        var tiers: [[ChildService]] = []
        for process in children.keys.sorted().reversed() {
            guard let child = children[process] else { continue }
            if let last = tiers.last, Self.samePeerTier(process, last[0].process) {
                tiers[tiers.count - 1].append(child)
            } else {
                tiers.append([child])
            }
        }
        for tier in tiers {
            for child in tier { child.stop(graceMs: graceMs) }
            for child in tier { await waitUntil { _ in child.isFinished } }
        }
        phase = .stopped
        addChild.finish()
        context.journal.record("stopped", process: nil, "every process has stopped")
    }

    // MARK: Control

    public func signal(named name: String, signal: String) async throws(APIError) -> ProcessStatus {
        let signals: [String: Int32] = ["KILL": SIGKILL, "TERM": SIGTERM, "STOP": SIGSTOP, "CONT": SIGCONT]
        let normalized = signal.uppercased().replacingOccurrences(of: "SIG", with: "")
        guard let number = signals[normalized] else { throw ControlError.invalidSignal(signal) }
        let child = try child(named: name)
        guard phase != .stopping && phase != .stopped else { throw ControlError.shuttingDown }
        return await child.signal(number, name: normalized)
    }

    /// Restarts a process now (TERM, KILL after the grace, spawn), also one that is `fatal`
    /// or stopped; its crash history is forgotten, since an operator asked for it.
    public func restart(named name: String) async throws(APIError) -> ProcessStatus {
        let child = try child(named: name)
        guard phase == .running else { throw phase == .starting ? ControlError.starting : ControlError.shuttingDown }
        return await child.restart()
    }

    public func addNode() throws(APIError) -> ProcessStatus {
        guard phase == .running else { throw phase == .starting ? ControlError.starting : ControlError.shuttingDown }
        // On several hosts the node ids are shared: this host adds the lowest id placed on it.
        // Ids placed elsewhere are that host's to run (placement.nodes, placement.nK).
        guard let index = (1...ClusterConfig.maxNodes).first(where: { children[.node($0)] == nil && context.config.hostName(of: .node($0)) == context.host }) else {
            throw ControlError.nodeLimit(ClusterConfig.maxNodes)
        }
        let process = ClusterProcess.node(index)
        let port = context.config.port(of: process)
        guard LoopbackSocket.isPortFree(host: context.config.address(of: process), port: port) else { throw ControlError.portInUse(process.name, port) }
        context.journal.record("add", process: process, "\(process.name) added on request")
        let child = launch(process, initialStart: false)
        var status = child.status(now: context.clock.nowMs())
        status.state = .starting
        return status
    }

    /// Graceful leave: SIGTERM lets the node cancel its quotes, release its grants and leave
    /// the membership; SIGKILL only after the grace. The row goes once the node is reaped.
    public func removeNode(named name: String) throws(APIError) -> ProcessStatus {
        let child = try child(named: name)
        guard case .node = child.process else { throw ControlError.notANode(name) }
        guard phase == .running else { throw phase == .starting ? ControlError.starting : ControlError.shuttingDown }
        var status = child.status(now: context.clock.nowMs())
        if status.pid != nil { status.state = .stopping }
        child.stop(graceMs: context.config.supervisor.stopGraceMs, removing: true)
        return status
    }
}
