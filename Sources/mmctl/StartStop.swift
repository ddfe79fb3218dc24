import ArgumentParser
import CurlClient
import Foundation
import MMCommandLine
import MMCore
import ProcessKit

/// The `mmd` the supervisor spawns: $MMD_BINARY, else the one next to this mmctl.
func mmdPath() -> String {
    if let path = ProcessInfo.processInfo.environment["MMD_BINARY"], !path.isEmpty { return path }
    return ((currentExecutablePath() as NSString).deletingLastPathComponent as NSString).appendingPathComponent("mmd")
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the cluster: a supervisor that spawns (local etcd members,) coordinator replicas, state, exchange, nodes and GUI in order.",
        discussion: "Returns when every process is ready (exit 0), or prints the log tail of the process that did not come up (exit 1). Refuses when a cluster already runs in the data directory (exit 2) or a port is taken (exit 5).")

    @OptionGroup var cluster: ClusterOptionGroup

    @Option(help: "Number of market-maker nodes (default: nodes.count from the config, 3).")
    var nodes: Int?

    @Flag(help: "Run the supervisor in this terminal instead of as a daemon (Ctrl-C stops the cluster).")
    var foreground = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let nodes, !(1...ClusterConfig.maxNodes).contains(nodes) {
            throw ValidationError("--nodes must be in 1...\(ClusterConfig.maxNodes) (got \(nodes))")
        }
    }

    func run() async throws {
        try await runReportingFailures {
            let dataDirectory = cluster.dataDirectory
            var extra: [String: String] = [:]
            if let nodes { extra["nodes.count"] = "\(nodes)" }
            // Start always resolves from --config ($MMCTL_CONFIG, ./etc/mmctl.yaml)/--set/env,
            // never from a previous run's file.
            let config = try await cluster.loadDiscoveredConfig(extra: extra)
            // Waiting for the supervisor goes through libcurl: over TLS, trusting tls.ca.
            CurlTransport.useClusterTrust(config)
            let overrides = try cluster.parsedOverrides().merging(extra) { _, new in new }
            try dataDirectory.ensureExists()
            if DataDirectoryLock.isHeld(dataDirectory) {
                throw CLIFailure(ExitStatus.alreadyRunning, SupervisorError.alreadyRunning(dataDirectory: dataDirectory.path, pid: SupervisorStateFile.read(dataDirectory)?.pid).description)
            }
            // The discovered file, as an absolute path: the supervisor and every child read it.
            let configPath = cluster.discoveredConfig().path
            let passThrough = overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let host = try cluster.thisHost(config: config)
            var arguments = [mmdPath(), "supervise", "--data-dir", dataDirectory.path]
            if config.isMultiHost { arguments += ["--host", host] }
            if let configPath { arguments += ["--config", configPath] }
            for item in passThrough { arguments += ["--set", item] }
            if foreground { return try await runInForeground(arguments, config: config, host: host, dataDirectory: dataDirectory, json: output.json) }
            let logPath = dataDirectory.logPath("supervisor")
            let startOffset = (try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? UInt64) ?? 0
            let pid: Int32
            do { pid = try DetachedSpawn.spawn(executable: arguments[0], arguments: arguments, logPath: logPath) } catch let error as SupervisorError {
                throw CLIFailure(ExitStatus.failed, error.description)
            }
            let processCount = max(1, config.processes(onHost: host, nodeCount: config.nodeCount).count)
            let deadline = ContinuousClock.now + .milliseconds(config.supervisor.readyTimeoutMs * Int64(processCount) + 10_000)
            let transport = CurlTransport()
            let progress = Progress()
            defer { progress.finish() }
            let started = ContinuousClock.now
            var nextProgress = started
            while ContinuousClock.now < deadline {
                if progress.enabled, ContinuousClock.now >= nextProgress {
                    nextProgress = ContinuousClock.now + .milliseconds(200)
                    progress.update(await startProgress(config: config, host: host, dataDirectory: dataDirectory, since: started))
                }
                if let code = DetachedSpawn.exitCodeIfEnded(pid) {
                    progress.finish()
                    let output = supervisorOutput(logPath: logPath, since: startOffset)
                    writeStderr("mmctl: the cluster did not start (supervisor exit \(code)):\n\(output)\n")
                    return code == 0 ? ExitStatus.failed : code
                }
                if let response = try? await transport.send(TransportRequest(method: .GET, url: config.supervisorURL(host: host) + CommonRoutes.readyz, timeoutMs: 500)),
                   response.status == 200 {
                    progress.finish()
                    try await printStarted(config: config, host: host, dataDirectory: dataDirectory, json: output.json)
                    return ExitStatus.ok
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            throw CLIFailure(ExitStatus.failed, "the supervisor (pid \(pid)) did not report ready in time; see \(logPath) and 'mmctl status'")
        }
    }

    /// What the supervisor wrote during this start attempt (its log is shared across runs).
    func supervisorOutput(logPath: String, since offset: UInt64) -> String {
        guard let handle = FileHandle(forReadingAtPath: logPath) else { return "(no supervisor log at \(logPath))" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").suffix(40).joined(separator: "\n")
    }
}

/// What `start` is waiting for, from the supervisor's process list: the processes not yet
/// running, in start order (each starts only after the previous one is ready).
func startProgress(config: ClusterConfig, host: String, dataDirectory: DataDirectory, since started: ContinuousClock.Instant) async -> String {
    let elapsed = ContinuousClock.now - started
    let seconds = "\(elapsed.components.seconds).\(elapsed.components.attoseconds / 100_000_000_000_000_000)s"
    guard let token = try? dataDirectory.readSecret(dataDirectory.tokenPath(.observer)),
          let list = try? await SupervisorClient(ServiceEndpoint(baseURL: config.supervisorURL(host: host), token: token, transport: CurlTransport(), timeoutMs: 300)).processes()
    else { return "starting the supervisor … (\(seconds))" }
    let running = list.processes.filter { $0.state == .running }.count
    let waiting = list.processes.first { $0.state != .running }
    let what = waiting.map { "waiting for \($0.name) (\($0.state.rawValue)\($0.state == .starting ? ": not ready yet" : ""))" } ?? "waiting for the supervisor to report ready"
    let expected = config.processes(onHost: host, nodeCount: config.nodeCount).count
    return "starting\(config.isMultiHost ? " host \(host)" : ""): \(running)/\(max(list.processes.count, expected)) running, \(what) (\(seconds))"
}

/// What `start` prints once the cluster is up.
struct StartedOutput: Encodable {
    var schemaVersion = outputSchemaVersion
    var dataDir: String
    var guiUrl: String
    /// The host this start was for (`local` on a single host).
    var host: String
    var processes: [ProcessStatus]
}

func printStarted(config: ClusterConfig, host: String, dataDirectory: DataDirectory, json: Bool = false) async throws {
    let token = (try? dataDirectory.readSecret(dataDirectory.tokenPath(.observer))) ?? ""
    let snapshot = await ClusterSnapshotBuilder(config: config, token: token, transport: CurlTransport()).snapshot()
    // On several hosts this start started one host's processes: list those.
    let started = config.isMultiHost ? snapshot.processes.filter { $0.host == host } : snapshot.processes
    if json {
        try writeJSON(StartedOutput(dataDir: dataDirectory.path, guiUrl: "\(config.baseURL(of: .gui))/", host: host, processes: started))
        return
    }
    writeStdout(config.isMultiHost ? "host \(host) of the cluster is up in \(dataDirectory.path)\n" : "cluster is up in \(dataDirectory.path)\n")
    writeStdout("GUI: \(config.baseURL(of: .gui))/\n")
    for process in started {
        writeStdout("  \(process.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(process.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) pid \(process.pid.map(String.init) ?? "-")  port \(process.port)\n")
    }
}

/// `mmctl start --foreground`: the supervisor in this terminal, its log on stderr. Ctrl-C
/// reaches it (same process group) and stops the cluster; mmctl waits for it and exits
/// with its code.
func runInForeground(_ arguments: [String], config: ClusterConfig, host: String, dataDirectory: DataDirectory, json: Bool) async throws -> Int32 {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let pid: Int32
    do { pid = try AttachedSpawn.spawn(executable: arguments[0], arguments: arguments) } catch {
        throw CLIFailure(ExitStatus.failed, error.description)
    }
    var announced = false
    let transport = CurlTransport()
    while true {
        if let code = DetachedSpawn.exitCodeIfEnded(pid) { return code }
        if !announced, let response = try? await transport.send(TransportRequest(method: .GET, url: config.supervisorURL(host: host) + CommonRoutes.readyz, timeoutMs: 500)),
           response.status == 200 {
            announced = true
            try await printStarted(config: config, host: host, dataDirectory: dataDirectory, json: json)
        }
        try? await Task.sleep(for: .milliseconds(announced ? 200 : 50))
    }
}

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the cluster: SIGTERM to every process in reverse start order, SIGKILL after the grace; the supervisor exits.",
        discussion: "Returns once no process of the cluster remains (checked by pid and process group).")

    @OptionGroup var cluster: ClusterOptionGroup

    @Option(help: ArgumentHelp("How long each process may take to exit after SIGTERM before it is killed (e.g. 10s, 500ms).", valueName: "duration"))
    var grace: String?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let grace { _ = try DurationParser.option(grace, named: "--grace") }
    }

    /// What `stop` prints with -o json.
    struct Stopped: Encodable {
        var schemaVersion = outputSchemaVersion
        var dataDir: String
        /// False when no supervisor ran (leftovers may still have been swept).
        var wasRunning: Bool
        var stoppedProcesses: Int
        var sweptPids: [Int32]
    }

    func run() async throws {
        try await runReportingFailures {
            let dataDirectory = cluster.dataDirectory
            let config = try await cluster.resolveConfig()
            let graceMs = try grace.map { try DurationParser.option($0, named: "--grace") } ?? config.supervisor.stopGraceMs
            guard DataDirectoryLock.isHeld(dataDirectory) else {
                let swept = LeftoverSweep.run(dataDirectory)
                if output.json {
                    try writeJSON(Stopped(dataDir: dataDirectory.path, wasRunning: false, stoppedProcesses: 0, sweptPids: swept))
                } else {
                    writeStdout(swept.isEmpty ? "no cluster running in \(dataDirectory.path)\n" : "no supervisor running; killed leftover processes \(swept)\n")
                }
                return ExitStatus.ok
            }
            let supervisorState = SupervisorStateFile.read(dataDirectory)
            let supervisorPid = supervisorState?.pid
            // The supervisor that holds this data directory (on several hosts: this machine's
            // host), at the address it wrote down when it started.
            let client = try supervisorState.map { SupervisorClient(ServiceEndpoint(baseURL: $0.url, token: try cluster.token(.supervisor), transport: CurlTransport(), timeoutMs: 5_000)) }
                ?? cluster.supervisorClient(as: .supervisor, config: config, host: try cluster.thisHost(config: config))
            var childPids: [Int32] = []
            do {
                childPids = try await client.processes().processes.compactMap(\.pid)
                _ = try await client.shutdown(graceMs: graceMs)
            } catch let error as ClientError {
                // A wedged control API must not make the cluster unstoppable: signal the
                // supervisor directly (it stops its children the same way on SIGTERM).
                guard let supervisorPid, HostChecks.isClusterProcess(pid: supervisorPid, dataDirectory: dataDirectory) else {
                    throw error.asCLIFailure("stop", dataDirectory: dataDirectory)
                }
                writeStderr("mmctl: control API did not answer (\(error)); sending SIGTERM to supervisor pid \(supervisorPid)\n")
                kill(supervisorPid, SIGTERM)
            }
            let processCount = Int64(max(childPids.count, 1))
            let deadline = ContinuousClock.now + .milliseconds(graceMs * processCount + 15_000)
            let progress = Progress()
            let started = ContinuousClock.now
            var nextProgress = started
            while ContinuousClock.now < deadline, DataDirectoryLock.isHeld(dataDirectory) || (supervisorPid.map(HostChecks.isAlive) ?? false) {
                if progress.enabled, ContinuousClock.now >= nextProgress {
                    nextProgress = ContinuousClock.now + .milliseconds(200)
                    let alive = childPids.filter(HostChecks.isAlive)
                    let elapsed = ContinuousClock.now - started
                    let seconds = "\(elapsed.components.seconds).\(elapsed.components.attoseconds / 100_000_000_000_000_000)s"
                    progress.update(alive.isEmpty
                        ? "stopping: waiting for the supervisor (pid \(supervisorPid.map(String.init) ?? "?")) to exit (\(seconds))"
                        : "stopping: \(alive.count) of \(childPids.count) processes still running (pids \(alive.prefix(6).map(String.init).joined(separator: " "))\(alive.count > 6 ? " …" : "")), SIGKILL after \(duration(graceMs)) each (\(seconds))")
                }
                try? await Task.sleep(for: .milliseconds(25))
            }
            progress.finish()
            if DataDirectoryLock.isHeld(dataDirectory) {
                throw CLIFailure(ExitStatus.failed, "the supervisor (pid \(supervisorPid.map(String.init) ?? "?")) is still running after the grace; see \(dataDirectory.logPath("supervisor"))")
            }
            // The supervisor reaps every child before exiting; verify rather than trust.
            let survivors = childPids.filter { HostChecks.isAlive($0) || kill(-$0, 0) == 0 }
            if !survivors.isEmpty {
                for pid in survivors where HostChecks.isClusterProcess(pid: pid, dataDirectory: dataDirectory) {
                    kill(-pid, SIGKILL)
                    kill(pid, SIGKILL)
                }
                throw CLIFailure(ExitStatus.failed, "processes \(survivors) outlived the supervisor and were killed")
            }
            if output.json {
                try writeJSON(Stopped(dataDir: dataDirectory.path, wasRunning: true, stoppedProcesses: childPids.count, sweptPids: []))
            } else {
                writeStdout("stopped: \(childPids.count) processes and the supervisor\n")
            }
            return ExitStatus.ok
        }
    }
}
