import ArgumentParser
import CurlClient
import Foundation
import MMCommandLine
import MMCore
import ProcessKit

/// A node id argument: nK with K in 1...64.
func validateNodeId(_ id: String) throws {
    guard let process = ClusterProcess(name: id), case .node = process else {
        throw ValidationError("'\(id)' is not a node id: nodes are n1 … n\(ClusterConfig.maxNodes)")
    }
}

/// What `kill-node` and `resume-node` take: a process the cluster is built to lose one of —
/// a node, a coordinator replica, a state replica (another takes over ingest; with one
/// replica the restarted one resumes from its stored cursor), a local etcd member, or the
/// local PostgreSQL (a crash it recovers from by WAL replay: the ledger loses nothing). The
/// exchange and the GUI have no peer to take over; `mmctl restart` is for them.
func validateDrillTarget(_ id: String) throws {
    switch ClusterProcess(name: id) {
    case .node, .coordinator, .coordinatorReplica, .etcd, .postgres, .state, .stateReplica:
        return
    case .some:
        throw ValidationError("'\(id)' has no peer to take over: kill-node takes a node (n1 …), a coordinator replica (coordinator, coordinator2 …), a state replica (state, state2 …), an etcd member (etcd1 …) or the local postgres; use 'mmctl restart \(id)'")
    case nil:
        throw ValidationError("'\(id)' is not a process: kill-node takes a node (n1 … n\(ClusterConfig.maxNodes)), a coordinator replica (coordinator, coordinator2 … coordinator\(ClusterProcess.maxCoordinatorReplicas)) or an etcd member (etcd1 … etcd\(ClusterProcess.maxEtcdMembers))")
    }
}

func describe(_ status: ProcessStatus) -> String {
    "\(status.name): \(status.state.rawValue), pid \(status.pid.map(String.init) ?? "-"), restarts \(status.restarts)"
}

struct KillNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill-node",
        abstract: "Chaos drill: signal the process group of a node, a coordinator replica or an etcd member (the supervisor restarts it per policy; after STOP use resume-node).")

    @OptionGroup var cluster: ClusterOptionGroup

    @Argument(help: "A node id (n2), a coordinator replica (coordinator, coordinator2 …), a state replica (state, state2 …), a local etcd member (etcd1 …) or postgres.",
              completion: .custom(CompletionValues.drillTargets))
    var id: String

    @Option(help: "KILL, TERM or STOP.", completion: .list(["KILL", "TERM", "STOP"]))
    var signal: String = "KILL"

    @OptionGroup var output: OutputOptions

    func validate() throws {
        try validateDrillTarget(id)
        guard ["KILL", "TERM", "STOP"].contains(signal.uppercased()) else {
            throw ValidationError("--signal must be KILL, TERM or STOP (got '\(signal)')")
        }
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let client = try cluster.supervisorClient(as: .supervisor, config: config, forProcess: id)
            do {
                let before = try await client.signal(id, signal: signal.uppercased())
                if output.json {
                    try writeJSON(ProcessActionOutput(action: "kill-node", signal: signal.uppercased(), process: before))
                } else {
                    writeStdout("SIG\(signal.uppercased()) sent to \(id) (pid \(before.pid.map(String.init) ?? "-"))\n")
                }
                return ExitStatus.ok
            } catch let error as ClientError {
                throw error.asCLIFailure("kill-node \(id)", dataDirectory: cluster.dataDirectory)
            }
        }
    }
}

struct ResumeNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume-node", abstract: "Send SIGCONT to a process stopped with 'kill-node --signal STOP'.")

    @OptionGroup var cluster: ClusterOptionGroup

    @Argument(help: "What kill-node stopped: a node id (n2), a coordinator replica or an etcd member.", completion: .custom(CompletionValues.drillTargets))
    var id: String

    @OptionGroup var output: OutputOptions

    func validate() throws { try validateDrillTarget(id) }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let client = try cluster.supervisorClient(as: .supervisor, config: config, forProcess: id)
            do {
                let status = try await client.signal(id, signal: "CONT")
                if output.json {
                    try writeJSON(ProcessActionOutput(action: "resume-node", signal: "CONT", process: status))
                } else {
                    writeStdout("SIGCONT sent to \(id) (pid \(status.pid.map(String.init) ?? "-"))\n")
                }
                return ExitStatus.ok
            } catch let error as ClientError {
                throw error.asCLIFailure("resume-node \(id)", dataDirectory: cluster.dataDirectory)
            }
        }
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Grow or shrink the node set at run time.", subcommands: [Add.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start one more node (the lowest free id); it joins and takes its share of symbols.",
            discussion: "With --wait, returns only once the node is running and ready (a member of the cluster), or exits 1 after --timeout (3 if it went fatal).")
        @OptionGroup var cluster: ClusterOptionGroup
        @OptionGroup var waiting: WaitOptions
        @OptionGroup var output: OutputOptions

        func validate() throws { try waiting.check() }

        func run() async throws {
            try await runReportingFailures {
                let config = try await cluster.resolveConfig()
                let client = try cluster.supervisorClient(as: .supervisor, config: config, host: try cluster.thisHost(config: config))
                do {
                    let status = try await client.addNode()
                    var waited: Int64?
                    var shown = status
                    if waiting.wait {
                        let result = try await waitUntilRunning(status.name, client: client, previousPid: nil, timeoutMs: try waiting.timeoutMs(config))
                        (shown, waited) = (result.0, result.1)
                    }
                    if output.json {
                        try writeJSON(ProcessActionOutput(action: "node add", process: shown, waitedMs: waited))
                    } else {
                        writeStdout(waited.map { "added \(describe(shown)); ready after \(duration($0))\n" } ?? "added \(describe(status))\n")
                    }
                    return ExitStatus.ok
                } catch let error as ClientError {
                    throw error.asCLIFailure("node add", dataDirectory: cluster.dataDirectory)
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a node gracefully (SIGTERM: it cancels its quotes, releases its grants, leaves) and drop it.")
        @OptionGroup var cluster: ClusterOptionGroup
        @Argument(help: "The node id, e.g. n3.", completion: .custom(CompletionValues.nodes))
        var id: String
        @OptionGroup var output: OutputOptions

        func validate() throws { try validateNodeId(id) }

        func run() async throws {
            try await runReportingFailures {
                let config = try await cluster.resolveConfig()
                let client = try cluster.supervisorClient(as: .supervisor, config: config, forProcess: id)
                do {
                    let status = try await client.removeNode(id)
                    if output.json {
                        try writeJSON(ProcessActionOutput(action: "node remove", process: status))
                    } else {
                        writeStdout("removing \(describe(status))\n")
                    }
                    return ExitStatus.ok
                } catch let error as ClientError {
                    throw error.asCLIFailure("node remove \(id)", dataDirectory: cluster.dataDirectory)
                }
            }
        }
    }
}

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restart one process now (also one marked fatal): SIGTERM, SIGKILL after the grace, start.",
        discussion: "With --wait, returns only once the new process is running and ready, or exits 1 after --timeout (3 if it went fatal).")

    @OptionGroup var cluster: ClusterOptionGroup

    @Argument(help: "coordinator (coordinator2 … for replicas), state, exchange, gui, a node id (n1, …) or an etcd member (etcd1 …).",
              completion: .custom(CompletionValues.processes))
    var service: String

    @OptionGroup var waiting: WaitOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard ClusterProcess(name: service) != nil else {
            throw ValidationError("unknown service '\(service)': \(processNames)")
        }
        try waiting.check()
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let client = try cluster.supervisorClient(as: .supervisor, config: config, forProcess: service)
            do {
                var before: Int32?
                if waiting.wait { before = try await client.processes().processes.first { $0.name == service }?.pid }
                let status = try await client.restart(service)
                var waited: Int64?
                var shown = status
                if waiting.wait {
                    let result = try await waitUntilRunning(service, client: client, previousPid: before, timeoutMs: try waiting.timeoutMs(config))
                    (shown, waited) = (result.0, result.1)
                }
                if output.json {
                    try writeJSON(ProcessActionOutput(action: "restart", process: shown, waitedMs: waited))
                } else {
                    writeStdout(waited.map { "restarted \(describe(shown)); ready after \(duration($0))\n" } ?? "restarting \(describe(status))\n")
                }
                return ExitStatus.ok
            } catch let error as ClientError {
                throw error.asCLIFailure("restart \(service)", dataDirectory: cluster.dataDirectory)
            }
        }
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a process's log (DATA_DIR/logs/NAME.log): the last N lines, optionally following it.",
        discussion: "Works when the supervisor is down too (the log is read from the data directory then). SERVICE may also be 'supervisor'.")

    @OptionGroup var cluster: ClusterOptionGroup

    @Argument(help: "coordinator (coordinator2 … for replicas), state, exchange, gui, a node id (n1, …), an etcd member (etcd1 …) or supervisor.",
              completion: .custom(CompletionValues.logServices))
    var service: String

    @OptionGroup var output: OutputOptions

    @Flag(name: .shortAndLong, help: "Keep printing lines as they are written (follows rotation).")
    var follow = false

    @Option(name: [.customShort("n"), .long], help: "How many lines to show first.")
    var lines: Int = 50

    func validate() throws {
        guard service == "supervisor" || ClusterProcess(name: service) != nil else {
            throw ValidationError("unknown service '\(service)': \(processNames) or supervisor")
        }
        guard lines >= 0 && lines <= 10_000 else { throw ValidationError("-n must be in 0...10000") }
    }

    func run() async throws {
        try await runReportingFailures {
            let dataDirectory = cluster.dataDirectory
            let path = dataDirectory.logPath(service)
            var shown: [String]?
            let config = try? await cluster.resolveConfig()
            if let config, config.isMultiHost, let process = ClusterProcess(name: service) {
                // Another host's process: its log is on that host, through its supervisor.
                let host = config.hostName(of: process)
                if host != (try? cluster.thisHost(config: config)) {
                    if follow { throw CLIFailure(ExitStatus.usage, "\(service) runs on host \(host): --follow reads the log file, so run it there") }
                    do {
                        let lines = try await cluster.supervisorClient(as: .observer, config: config, host: host, timeoutMs: 5_000).logs(service, lines: lines).lines
                        for line in lines { writeStdout(output.json ? try logLineJSON(line) : line + "\n") }
                        return ExitStatus.ok
                    } catch let error as ClientError {
                        throw error.asCLIFailure("logs \(service) (host \(host))", dataDirectory: dataDirectory)
                    }
                }
            }
            if service != "supervisor", let config, let client = try? cluster.supervisorClient(as: .observer, config: config, forProcess: service, timeoutMs: 2_000) {
                shown = try? await client.logs(service, lines: lines).lines
            }
            if shown == nil {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw CLIFailure(ExitStatus.notRunning, "no log for '\(service)' at \(path)")
                }
                shown = RotatingLog.tail(path: path, lines: lines)
            }
            if output.json {
                // NDJSON: one {"service", "line"} object per log line.
                for line in shown ?? [] { writeStdout(try logLineJSON(line)) }
            } else if let shown, !shown.isEmpty {
                writeStdout(shown.joined(separator: "\n") + "\n")
            }
            guard follow else { return ExitStatus.ok }
            await follow(path: path)
            return ExitStatus.ok
        }
    }

    /// tail -F: polls the file's size and identity (a CLI nicety, not the supervisor).
    func follow(path: String) async {
        let stop = StopSignals()
        var pending = ""
        var offset = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
        var inode = (try? FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64) ?? 0
        while !stop.requested {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = attributes?[.size] as? UInt64 ?? 0
            let currentInode = attributes?[.systemFileNumber] as? UInt64 ?? 0
            if currentInode != inode || size < offset {
                inode = currentInode
                offset = 0 // rotated or truncated: start the new file from its beginning
            }
            if size > offset, let handle = FileHandle(forReadingAtPath: path) {
                try? handle.seek(toOffset: offset)
                let data = handle.readData(ofLength: Int(size - offset))
                try? handle.close()
                offset += UInt64(data.count)
                if output.json {
                    pending += String(decoding: data, as: UTF8.self)
                    while let newline = pending.firstIndex(of: "\n") {
                        if let line = try? logLineJSON(String(pending[..<newline])) { writeStdout(line) }
                        pending = String(pending[pending.index(after: newline)...])
                    }
                } else {
                    FileHandle.standardOutput.write(data)
                }
            }
            await stop.sleep(ms: 200)
        }
    }
}

/// Every process name a command may take, for usage errors.
let processNames = "coordinator, coordinator2…coordinator\(ClusterProcess.maxCoordinatorReplicas), state, exchange, gui, n1…n\(ClusterConfig.maxNodes), etcd1…etcd\(ClusterProcess.maxEtcdMembers)"

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print mmctl's version and the libcurl it uses.")

    @OptionGroup var output: OutputOptions

    struct Document: Encodable {
        var schemaVersion = outputSchemaVersion
        var mmctl: String
        var libcurl: String
    }

    func run() async throws {
        if output.json {
            try writeJSON(Document(mmctl: MMVersion.current, libcurl: CurlTransport.libcurlVersion))
        } else {
            writeStdout("mmctl \(MMVersion.current)\n\(CurlTransport.libcurlVersion)\n")
        }
    }
}

extension Logs {
    struct Line: Encodable {
        var service: String
        var line: String
    }

    func logLineJSON(_ line: String) throws -> String {
        String(decoding: try MMJSON.encode(Line(service: service, line: line)), as: UTF8.self) + "\n"
    }
}

/// `--wait [--timeout DURATION]` of restart and node add.
struct WaitOptions: ParsableArguments {
    @Flag(help: "Return only once the process is running and ready (or fail after --timeout).")
    var wait = false

    @Option(help: ArgumentHelp("With --wait: how long to wait (default: supervisor.stop_grace_ms + supervisor.ready_timeout_ms).", valueName: "duration"))
    var timeout: String?

    func check() throws {
        guard let timeout else { return }
        guard wait else { throw ValidationError("--timeout is only for --wait") }
        _ = try DurationParser.option(timeout, named: "--timeout", atLeast: 1)
    }

    func timeoutMs(_ config: ClusterConfig) throws -> Int64 {
        try timeout.map { try DurationParser.option($0, named: "--timeout", atLeast: 1) } ?? (config.supervisor.stopGraceMs + config.supervisor.readyTimeoutMs)
    }
}

/// Polls the supervisor until `name` is running — which it reports only once the process
/// answered /readyz — with a pid other than `previousPid`. A fatal process ends the wait at
/// once (exit 3); the deadline with exit 1. Progress on stderr when it is a terminal.
func waitUntilRunning(_ name: String, client: SupervisorClient, previousPid: Int32?, timeoutMs: Int64) async throws -> (ProcessStatus, Int64) {
    let progress = Progress()
    defer { progress.finish() }
    let started = ContinuousClock.now
    let deadline = started + .milliseconds(timeoutMs)
    var last: ProcessStatus?
    func elapsedMs() -> Int64 {
        let elapsed = ContinuousClock.now - started
        return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }
    while ContinuousClock.now < deadline {
        if let status = try? await client.processes().processes.first(where: { $0.name == name }) {
            last = status
            if status.state == .running, let pid = status.pid, pid != previousPid { return (status, elapsedMs()) }
            if status.state == .fatal {
                throw CLIFailure(ExitStatus.notRunning, "\(name) is fatal: \(status.fatalReason ?? "restart limit reached"); see 'mmctl logs \(name)'")
            }
            progress.update("waiting for \(name) to be running and ready: \(status.state.rawValue), pid \(status.pid.map(String.init) ?? "-") (\(duration(elapsedMs())))")
        } else {
            progress.update("waiting for the supervisor to list \(name) (\(duration(elapsedMs())))")
        }
        try? await Task.sleep(for: .milliseconds(50))
    }
    throw CLIFailure(ExitStatus.failed, "\(name) was not running and ready within \(duration(timeoutMs)) (last state: \(last.map(describe) ?? "not listed")); see 'mmctl logs \(name)'")
}
