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

    @Argument(help: "A node id (n2), a coordinator replica (coordinator, coordinator2 …) or a local etcd member (etcd1 …).")
    var id: String

    @Option(help: "KILL, TERM or STOP.")
    var signal: String = "KILL"

    func validate() throws {
        try validateDrillTarget(id)
        guard ["KILL", "TERM", "STOP"].contains(signal.uppercased()) else {
            throw ValidationError("--signal must be KILL, TERM or STOP (got '\(signal)')")
        }
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let client = try cluster.supervisorClient(as: .supervisor, config: config)
            do {
                let before = try await client.signal(id, signal: signal.uppercased())
                writeStdout("SIG\(signal.uppercased()) sent to \(id) (pid \(before.pid.map(String.init) ?? "-"))\n")
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

    @Argument(help: "What kill-node stopped: a node id (n2), a coordinator replica or an etcd member.")
    var id: String

    func validate() throws { try validateDrillTarget(id) }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let client = try cluster.supervisorClient(as: .supervisor, config: config)
            do {
                let status = try await client.signal(id, signal: "CONT")
                writeStdout("SIGCONT sent to \(id) (pid \(status.pid.map(String.init) ?? "-"))\n")
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
        static let configuration = CommandConfiguration(abstract: "Start one more node (the lowest free id); it joins and takes its share of symbols.")
        @OptionGroup var cluster: ClusterOptionGroup

        func run() async throws {
            try await runReportingFailures {
                let config = try await cluster.resolveConfig()
                let client = try cluster.supervisorClient(as: .supervisor, config: config)
                do {
                    let status = try await client.addNode()
                    writeStdout("added \(describe(status))\n")
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
        @Argument(help: "The node id, e.g. n3.")
        var id: String

        func validate() throws { try validateNodeId(id) }

        func run() async throws {
            try await runReportingFailures {
                let config = try await cluster.resolveConfig()
                let client = try cluster.supervisorClient(as: .supervisor, config: config)
                do {
                    let status = try await client.removeNode(id)
                    writeStdout("removing \(describe(status))\n")
                    return ExitStatus.ok
                } catch let error as ClientError {
                    throw error.asCLIFailure("node remove \(id)", dataDirectory: cluster.dataDirectory)
                }
            }
        }
    }
}

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restart one process now (also one marked fatal): SIGTERM, SIGKILL after the grace, start.")

    @OptionGroup var cluster: ClusterOptionGroup

    @Argument(help: "coordinator (coordinator2 … for replicas), state, exchange, gui, a node id (n1, …) or an etcd member (etcd1 …).")
    var service: String

    func validate() throws {
        guard ClusterProcess(name: service) != nil else {
            throw ValidationError("unknown service '\(service)': \(processNames)")
        }
    }

    func run() async throws {
        try await runReportingFailures {
            let config = try await cluster.resolveConfig()
            let client = try cluster.supervisorClient(as: .supervisor, config: config)
            do {
                let status = try await client.restart(service)
                writeStdout("restarting \(describe(status))\n")
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

    @Argument(help: "coordinator (coordinator2 … for replicas), state, exchange, gui, a node id (n1, …), an etcd member (etcd1 …) or supervisor.")
    var service: String

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
            if service != "supervisor", let config = try? await cluster.resolveConfig(), let client = try? cluster.supervisorClient(as: .observer, config: config, timeoutMs: 2_000) {
                shown = try? await client.logs(service, lines: lines).lines
            }
            if shown == nil {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw CLIFailure(ExitStatus.notRunning, "no log for '\(service)' at \(path)")
                }
                shown = RotatingLog.tail(path: path, lines: lines)
            }
            if let shown, !shown.isEmpty { writeStdout(shown.joined(separator: "\n") + "\n") }
            guard follow else { return ExitStatus.ok }
            await follow(path: path)
            return ExitStatus.ok
        }
    }

    /// tail -F: polls the file's size and identity (a CLI nicety, not the supervisor).
    func follow(path: String) async {
        let stop = StopSignals()
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
                FileHandle.standardOutput.write(data)
            }
            await stop.sleep(ms: 200)
        }
    }
}

/// Every process name a command may take, for usage errors.
let processNames = "coordinator, coordinator2…coordinator\(ClusterProcess.maxCoordinatorReplicas), state, exchange, gui, n1…n\(ClusterConfig.maxNodes), etcd1…etcd\(ClusterProcess.maxEtcdMembers)"

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print mmctl's version and the libcurl it uses.")

    func run() async throws {
        writeStdout("mmctl \(MMVersion.current)\n\(CurlTransport.libcurlVersion)\n")
    }
}
