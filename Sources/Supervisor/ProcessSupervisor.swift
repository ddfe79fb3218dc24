import Foundation
import Logging
import MMCore
import MMServiceKit

/// How the supervisor starts its children: the `mmd` binary and the arguments every child
/// gets so that all of them resolve the same configuration.
public struct ChildLaunchSettings: Sendable {
    public var mmdPath: String
    public var configPath: String?
    /// Raw `key=value` overrides, passed to every child as `--set`.
    public var overrides: [String]

    public init(mmdPath: String, configPath: String?, overrides: [String]) {
        self.mmdPath = mmdPath
        self.configPath = configPath
        self.overrides = overrides
    }

    func arguments(for process: ClusterProcess, dataDirectory: DataDirectory) -> [String] {
        var arguments = [mmdPath]
        switch process {
        case .exchange: arguments += ["exchange", "serve"]
        case .node: arguments += ["node", "--id", process.name]
        default: arguments.append(process.name)
        }
        if let configPath { arguments += ["--config", configPath] }
        arguments += ["--data-dir", dataDirectory.path]
        for override in overrides { arguments += ["--set", override] }
        arguments.append("--exit-with-parent")
        return arguments
    }
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

/// The process table and everything that changes it: spawning, readiness, exits, restarts
/// with backoff, fatal, signals, node add/remove and ordered shutdown. An actor, so exits
/// (reported from waiter threads) and API requests never race.
///
/// Nothing here ticks: an idle cluster costs the supervisor no CPU. Time-based decisions
/// (stable uptime, restart intensity) are made from timestamps when a process exits.
public actor ProcessSupervisor {
    public enum Phase: String, Sendable { case starting, running, stopping, stopped }

    enum Intent: Sendable { case keepRunning, restartNow, stop, remove }

    struct Managed {
        var process: ClusterProcess
        var state: ProcessState = .stopped
        var child: SpawnedChild?
        var generation = 0
        var restarts: Int64 = 0
        var startedAtMs: EpochMs?
        var lastExit: ProcessExit?
        var history: RestartPolicy.History
        var intent: Intent = .keepRunning
    }

    let config: ClusterConfig
    let dataDirectory: DataDirectory
    let launch: ChildLaunchSettings
    let policy: RestartPolicy
    let clock: any EpochClock
    let logger: Logger
    let transport: any HTTPTransport
    public let startedAtMs: EpochMs

    private var table: [ClusterProcess: Managed] = [:]
    /// Generations are unique across the supervisor, not per name: a node removed and added
    /// again under the same name must not inherit its predecessor's generation, or a timer left
    /// by the predecessor (the SIGKILL escalation after SIGTERM) would hit the newcomer.
    private var lastGeneration = 0
    private var logs: [String: RotatingLog] = [:]
    private var events: [ClusterEvent] = []
    private var nextEventSeq: Int64 = 1
    private var exitWaiters: [ClusterProcess: [UUID: CheckedContinuation<Bool, Never>]] = [:]
    public private(set) var phase: Phase = .starting

    static let eventCapacity = 2_000

    public init(config: ClusterConfig, dataDirectory: DataDirectory, launch: ChildLaunchSettings, clock: any EpochClock = MonotonicEpochClock(), transport: any HTTPTransport = AHCTransport.shared, logger: Logger) {
        self.config = config
        self.dataDirectory = dataDirectory
        self.launch = launch
        self.policy = RestartPolicy(config.supervisor)
        self.clock = clock
        self.transport = transport
        self.logger = logger
        self.startedAtMs = clock.nowMs()
    }

    // MARK: Inspection

    public func processList() -> ProcessList {
        let now = clock.nowMs()
        return ProcessList(
            supervisor: SupervisorInfo(pid: getpid(), uptimeMs: now - startedAtMs, startedAtMs: startedAtMs, phase: phase.rawValue),
            processes: table.keys.sorted().map { status(of: $0, now: now) })
    }

    func status(of process: ClusterProcess, now: EpochMs) -> ProcessStatus {
        let managed = table[process]
        let live = managed?.state == .running || managed?.state == .starting || managed?.state == .stopping
        return ProcessStatus(
            name: process.name, role: process.role, pid: managed?.child?.pid, state: managed?.state ?? .stopped,
            restarts: managed?.restarts ?? 0,
            uptimeMs: live ? managed?.startedAtMs.map { now - $0 } : nil,
            port: config.port(of: process), lastExit: managed?.lastExit)
    }

    public func status(named name: String) throws -> ProcessStatus {
        guard let process = ClusterProcess(name: name), table[process] != nil else { throw ControlError.unknownProcess(name) }
        return status(of: process, now: clock.nowMs())
    }

    public func eventPage(after seq: Int64, limit: Int) -> EventPage {
        let page = events.lazy.filter { $0.seq > seq }.prefix(limit)
        return EventPage(events: Array(page), headSeq: nextEventSeq - 1)
    }

    public func logPath(named name: String) throws -> String {
        guard let process = ClusterProcess(name: name), table[process] != nil || FileManager.default.fileExists(atPath: dataDirectory.logPath(name)) else {
            throw ControlError.unknownProcess(name)
        }
        return dataDirectory.logPath(process.name)
    }

    // MARK: Start

    /// Spawns every process in dependency order, each only after the previous one answered
    /// `/readyz`. Throws with the failing process's log tail.
    public func startAll(nodeCount: Int) async throws(SupervisorError) {
        let processes: [ClusterProcess] = [.coordinator, .state, .exchange] + (1...max(1, nodeCount)).map { .node($0) } + [.gui]
        for process in processes {
            table[process] = Managed(process: process, history: policy.freshHistory())
        }
        for process in processes {
            try spawn(process)
            try await waitUntilReady(process)
        }
        phase = .running
        record("cluster_ready", process: nil, "all \(processes.count) processes are ready")
    }

    private func waitUntilReady(_ process: ClusterProcess) async throws(SupervisorError) {
        let deadline = clock.nowMs() + config.supervisor.readyTimeoutMs
        let generation = table[process]?.generation
        while true {
            guard let managed = table[process] else { return }
            if managed.state == .running { return }
            if managed.generation != generation || managed.child == nil {
                throw .exitedDuringStart(
                    process: process.name, exit: managed.lastExit.map { describe($0) } ?? "exited",
                    logTail: RotatingLog.tail(path: dataDirectory.logPath(process.name), lines: 20))
            }
            if clock.nowMs() >= deadline {
                throw .notReady(process: process.name, timeoutMs: config.supervisor.readyTimeoutMs,
                                logTail: RotatingLog.tail(path: dataDirectory.logPath(process.name), lines: 20))
            }
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    private func log(for process: ClusterProcess) throws(SupervisorError) -> RotatingLog {
        if let existing = logs[process.name] { return existing }
        do {
            let created = try RotatingLog(path: dataDirectory.logPath(process.name), maxBytes: config.supervisor.logMaxBytes, keep: Int(config.supervisor.logKeep))
            logs[process.name] = created
            return created
        } catch let error as SupervisorError {
            throw error
        } catch {
            throw .io("\(error)")
        }
    }

    private func spawn(_ process: ClusterProcess) throws(SupervisorError) {
        guard var managed = table[process] else { return }
        let log = try log(for: process)
        lastGeneration += 1
        managed.generation = lastGeneration
        let generation = managed.generation
        let arguments = launch.arguments(for: process, dataDirectory: dataDirectory)
        log.note("starting: \(arguments.joined(separator: " "))")
        let child = try SpawnedChild.spawn(executable: launch.mmdPath, arguments: arguments, log: log) { [weak self] exit in
            guard let self else { return }
            Task { await self.childExited(process, generation: generation, exit: exit) }
        }
        managed.child = child
        managed.state = .starting
        managed.startedAtMs = clock.nowMs()
        managed.intent = .keepRunning
        table[process] = managed
        try? "\(child.pid)\n".write(toFile: dataDirectory.pidPath(process.name), atomically: true, encoding: .utf8)
        record("spawn", process: process, "\(process.name) started as pid \(child.pid)")
        logger.info("spawned \(process.name) pid \(child.pid)")
        let url = config.baseURL(of: process) + CommonRoutes.readyz
        let timeoutMs = config.supervisor.readyTimeoutMs
        Task { await self.watchReadiness(process, generation: generation, url: url, timeoutMs: timeoutMs) }
    }

    /// Polls `/readyz` of a starting process (only while it starts; a running cluster is
    /// not polled). A restarted process that never becomes ready is killed and counts as a
    /// crash, so a wedged child cannot sit in `starting` forever.
    private func watchReadiness(_ process: ClusterProcess, generation: Int, url: String, timeoutMs: Int64) async {
        let deadline = clock.nowMs() + timeoutMs
        while clock.nowMs() < deadline {
            guard let managed = table[process], managed.generation == generation, managed.state == .starting else { return }
            if let response = try? await transport.send(TransportRequest(method: .GET, url: url, timeoutMs: 500)), response.status == 200 {
                markReady(process, generation: generation)
                return
            }
            try? await Task.sleep(for: .milliseconds(25))
        }
        guard let managed = table[process], managed.generation == generation, managed.state == .starting else { return }
        if phase == .running {
            logs[process.name]?.note("not ready within \(timeoutMs) ms: killing it (counts as a crash)")
            record("not_ready", process: process, "\(process.name) not ready within \(timeoutMs) ms; killed")
            managed.child?.signalGroup(SIGKILL)
        }
    }

    private func markReady(_ process: ClusterProcess, generation: Int) {
        guard var managed = table[process], managed.generation == generation, managed.state == .starting else { return }
        managed.state = .running
        table[process] = managed
        record("ready", process: process, "\(process.name) is ready (pid \(managed.child?.pid ?? 0))")
    }

    // MARK: Exits and restarts

    private func describe(_ exit: ProcessExit) -> String {
        if let code = exit.code { return "exited with code \(code)" }
        if let signal = exit.signal { return "was killed by \(signalName(signal))" }
        return "exited"
    }

    func childExited(_ process: ClusterProcess, generation: Int, exit: ChildExit) {
        guard var managed = table[process], managed.generation == generation else { return }
        let now = clock.nowMs()
        let upFor = now - (managed.startedAtMs ?? now)
        let pid = managed.child?.pid ?? 0
        managed.child = nil
        managed.lastExit = ProcessExit(code: exit.code, signal: exit.signal, atMs: now)
        try? FileManager.default.removeItem(atPath: dataDirectory.pidPath(process.name))
        let what = "\(process.name) (pid \(pid)) \(exit) after \(upFor) ms"
        logs[process.name]?.note(what)
        record("exit", process: process, what)
        logger.notice("\(what)")
        defer { resumeExitWaiters(process) }

        switch managed.intent {
        case .remove:
            table[process] = nil
            record("remove", process: process, "\(process.name) removed from the cluster")
            return
        case .stop:
            managed.state = .stopped
            table[process] = managed
            return
        case .restartNow:
            managed.intent = .keepRunning
            managed.restarts += 1
            table[process] = managed
            record("restart", process: process, "\(process.name) restarted on request")
            do { try spawn(process) } catch { markFailedSpawn(process, error) }
            return
        case .keepRunning:
            break
        }
        if phase == .stopping || phase == .stopped {
            managed.state = .stopped
            table[process] = managed
            return
        }
        switch policy.onExit(&managed.history, upForMs: upFor, nowMs: now) {
        case .restart(let delay):
            managed.state = .backoff
            table[process] = managed
            logs[process.name]?.note("restarting in \(delay) ms")
            let nextGeneration = managed.generation
            Task {
                try? await Task.sleep(for: .milliseconds(delay))
                await self.restartAfterBackoff(process, generation: nextGeneration)
            }
        case .fatal(let restarts):
            managed.state = .fatal
            table[process] = managed
            let message = "\(process.name) is fatal: it exited again after \(restarts) restarts within \(policy.periodMs) ms (supervisor.max_restarts=\(policy.maxRestarts)); left down. Fix the cause (see its log), then 'mmctl restart \(process.name)'"
            logs[process.name]?.note(message)
            record("fatal", process: process, message)
            logger.error("\(message)")
        }
    }

    private func restartAfterBackoff(_ process: ClusterProcess, generation: Int) {
        guard var managed = table[process], managed.generation == generation, managed.state == .backoff,
              managed.intent == .keepRunning, phase == .running || phase == .starting else { return }
        managed.restarts += 1
        table[process] = managed
        record("restart", process: process, "\(process.name) restart #\(managed.restarts) after backoff")
        do { try spawn(process) } catch { markFailedSpawn(process, error) }
    }

    private func markFailedSpawn(_ process: ClusterProcess, _ error: SupervisorError) {
        guard var managed = table[process] else { return }
        managed.state = .fatal
        table[process] = managed
        record("fatal", process: process, "\(process.name) could not be spawned: \(error)")
    }

    // MARK: Control

    public func signal(named name: String, signal: String) throws -> ProcessStatus {
        let signals: [String: Int32] = ["KILL": SIGKILL, "TERM": SIGTERM, "STOP": SIGSTOP, "CONT": SIGCONT]
        let normalized = signal.uppercased().replacingOccurrences(of: "SIG", with: "")
        guard let number = signals[normalized] else { throw ControlError.invalidSignal(signal) }
        guard let process = ClusterProcess(name: name), let managed = table[process] else { throw ControlError.unknownProcess(name) }
        guard phase != .stopping else { throw ControlError.shuttingDown }
        if let child = managed.child {
            child.signalGroup(number)
            record("signal", process: process, "SIG\(normalized) sent to \(process.name) (pid \(child.pid)) on request")
            logs[process.name]?.note("SIG\(normalized) sent on request")
        }
        return status(of: process, now: clock.nowMs())
    }

    /// Restarts a process now (TERM, KILL after the grace, spawn), also one that is `fatal`
    /// or stopped; its crash history is forgotten, since an operator asked for it.
    public func restart(named name: String) throws -> ProcessStatus {
        guard let process = ClusterProcess(name: name), var managed = table[process] else { throw ControlError.unknownProcess(name) }
        guard phase == .running else { throw phase == .starting ? ControlError.starting : ControlError.shuttingDown }
        managed.history = policy.freshHistory()
        if let child = managed.child {
            managed.intent = .restartNow
            managed.state = .stopping
            table[process] = managed
            child.signalGroup(SIGCONT)
            child.signalGroup(SIGTERM)
            escalate(process, generation: managed.generation, afterMs: config.supervisor.stopGraceMs)
        } else {
            managed.restarts += 1
            table[process] = managed
            record("restart", process: process, "\(process.name) restarted on request (was \(managed.state.rawValue))")
            try spawn(process)
        }
        return status(of: process, now: clock.nowMs())
    }

    /// SIGKILLs the process group if this incarnation is still alive after `afterMs`.
    private func escalate(_ process: ClusterProcess, generation: Int, afterMs: Int64) {
        Task {
            try? await Task.sleep(for: .milliseconds(afterMs))
            await self.killIfStillRunning(process, generation: generation)
        }
    }

    private func killIfStillRunning(_ process: ClusterProcess, generation: Int) {
        guard let managed = table[process], managed.generation == generation, let child = managed.child else { return }
        logs[process.name]?.note("still running after the grace period: SIGKILL")
        record("kill", process: process, "\(process.name) (pid \(child.pid)) ignored SIGTERM for the grace period: SIGKILL")
        child.signalGroup(SIGKILL)
    }

    public func addNode() throws -> ProcessStatus {
        guard phase == .running else { throw phase == .starting ? ControlError.starting : ControlError.shuttingDown }
        guard let index = (1...ClusterConfig.maxNodes).first(where: { table[.node($0)] == nil }) else {
            throw ControlError.nodeLimit(ClusterConfig.maxNodes)
        }
        let process = ClusterProcess.node(index)
        let port = config.port(of: process)
        guard LoopbackSocket.isPortFree(host: config.listen.host, port: port) else { throw ControlError.portInUse(process.name, port) }
        table[process] = Managed(process: process, history: policy.freshHistory())
        record("add", process: process, "\(process.name) added on request")
        try spawn(process)
        return status(of: process, now: clock.nowMs())
    }

    /// Graceful leave: SIGTERM lets the node cancel its quotes, release its grants and leave
    /// the membership; SIGKILL only after the grace.
    public func removeNode(named name: String) throws -> ProcessStatus {
        guard let process = ClusterProcess(name: name), var managed = table[process] else { throw ControlError.unknownProcess(name) }
        guard case .node = process else { throw ControlError.notANode(name) }
        guard phase == .running else { throw phase == .starting ? ControlError.starting : ControlError.shuttingDown }
        let result: ProcessStatus
        if let child = managed.child {
            managed.intent = .remove
            managed.state = .stopping
            table[process] = managed
            result = status(of: process, now: clock.nowMs())
            child.signalGroup(SIGCONT)
            child.signalGroup(SIGTERM)
            escalate(process, generation: managed.generation, afterMs: config.supervisor.stopGraceMs)
        } else {
            result = status(of: process, now: clock.nowMs())
            table[process] = nil
            record("remove", process: process, "\(process.name) removed from the cluster")
        }
        return result
    }

    /// Stops every process in reverse start order: SIGTERM, then SIGKILL after `graceMs`
    /// for that process. Returns when every child has been reaped.
    public func stopAll(graceMs: Int64) async {
        guard phase != .stopping && phase != .stopped else {
            await waitUntilStopped()
            return
        }
        phase = .stopping
        record("shutdown", process: nil, "stopping every process (grace \(graceMs) ms each)")
        for process in table.keys.sorted().reversed() {
            await stop(process, graceMs: graceMs)
        }
        phase = .stopped
        record("stopped", process: nil, "every process has stopped")
        resumeExitWaiters(nil)
    }

    private func waitUntilStopped() async {
        while phase != .stopped { try? await Task.sleep(for: .milliseconds(50)) }
    }

    private func stop(_ process: ClusterProcess, graceMs: Int64) async {
        guard var managed = table[process] else { return }
        managed.intent = .stop
        guard let child = managed.child else {
            managed.state = .stopped
            table[process] = managed
            return
        }
        managed.state = .stopping
        table[process] = managed
        logs[process.name]?.note("stopping: SIGTERM (grace \(graceMs) ms)")
        child.signalGroup(SIGCONT) // a SIGSTOPped child cannot act on SIGTERM
        child.signalGroup(SIGTERM)
        if await waitForExit(process, timeoutMs: graceMs) { return }
        logs[process.name]?.note("still running after \(graceMs) ms: SIGKILL")
        record("kill", process: process, "\(process.name) (pid \(child.pid)) did not stop within \(graceMs) ms: SIGKILL")
        child.signalGroup(SIGKILL)
        _ = await waitForExit(process, timeoutMs: 10_000)
    }

    /// Waits until the current incarnation of `process` has been reaped; false on timeout.
    private func waitForExit(_ process: ClusterProcess, timeoutMs: Int64) async -> Bool {
        if table[process]?.child == nil { return true }
        let id = UUID()
        return await withCheckedContinuation { continuation in
            exitWaiters[process, default: [:]][id] = continuation
            Task {
                try? await Task.sleep(for: .milliseconds(timeoutMs))
                self.timeoutExitWaiter(process, id: id)
            }
        }
    }

    private func timeoutExitWaiter(_ process: ClusterProcess, id: UUID) {
        exitWaiters[process]?.removeValue(forKey: id)?.resume(returning: table[process]?.child == nil)
    }

    private func resumeExitWaiters(_ process: ClusterProcess?) {
        guard let process else { return }
        let waiters = exitWaiters.removeValue(forKey: process) ?? [:]
        for continuation in waiters.values { continuation.resume(returning: true) }
    }

    /// Every child pid currently alive (for the final sweep and tests).
    public func livePids() -> [Int32] { table.values.compactMap { $0.child?.pid } }

    // MARK: Events

    private func record(_ kind: String, process: ClusterProcess?, _ detail: String) {
        var node: String?
        if case .node = process { node = process?.name }
        events.append(ClusterEvent(seq: nextEventSeq, tsMs: clock.nowMs(), kind: kind, node: node, detail: detail))
        nextEventSeq += 1
        if events.count > Self.eventCapacity { events.removeFirst(events.count - Self.eventCapacity) }
    }
}
