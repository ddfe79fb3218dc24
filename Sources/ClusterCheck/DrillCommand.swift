import ArgumentParser
import Foundation
import MMCommandLine
import MMCore

/// `mmctl drill`: seeded faults on a running cluster through the supervisor, then `check`.
public struct DrillCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Inject seeded faults into a running cluster, time every recovery, then run the invariant check.",
        discussion: """
            Faults run one at a time; each waits for the cluster to be steady first.
            kill: SIGKILL a node. stop: SIGSTOP a node past the grant TTL, then SIGCONT.
            restart-state / restart-exchange / restart-coordinator: restart that service.
            add / remove: add a node / remove one gracefully.
            With coordinator.backend=etcd: kill-coordinator / stop-coordinator: SIGKILL a
            coordinator replica / SIGSTOP one past the grant TTL (2+ replicas); kill-etcd:
            SIGKILL one local etcd member; quorum-loss: SIGSTOP a majority of the members until
            every grant lapsed, then SIGCONT (3+ local members). Faults that do not apply to
            the running cluster are never chosen. With state.backend=postgres and its local
            server: kill-postgres (SIGKILL it; WAL recovery) and restart-postgres; with
            state.replicas 2+: kill-state (SIGKILL a state replica; another ingests).
            With hosts in the config and --host-fault-command: partition-host (cut a host off
            past the grant TTL and the dead-man's switch, then heal) and kill-host (SIGKILL all
            of a host, supervisor included, then start it again), on hosts whose loss the
            cluster survives (no exchange, GUI, first state replica or local PostgreSQL there).
            Exit status: 0 every invariant held and every goal met, 1 otherwise, 4 a service or
            the supervisor is unreachable, 64 usage. -o json (--json) prints one object
            (docs/API.md). Durations take 250ms, 2s, 1m; the older --recovery-timeout-ms and
            --orphan-slack-ms (whole milliseconds) still work.
            """)

    @OptionGroup public var cluster: ClusterSelection

    @Option(name: .long, help: ArgumentHelp("How long to keep injecting faults: 60s, 10m, 90000ms.", valueName: "duration"))
    public var duration: String = "60s"

    @Option(name: .long, help: "Seed of the fault sequence (same seed, same choices).")
    public var seed: UInt64 = 7

    @Option(name: .long, help: "Comma-separated faults to choose from.", completion: .list(FaultKind.allCases.map(\.rawValue)))
    public var faults: String = FaultKind.allCases.map(\.rawValue).joined(separator: ",")

    @Option(name: .long, help: "Which node a node fault hits: random (seeded) or busiest (most symbols held).", completion: .list(["random", "busiest"]))
    public var target: String = "random"

    @Option(name: .long, help: "Stop after this many faults (default: as many as the duration allows).")
    public var count: Int?

    @Option(name: .long, help: ArgumentHelp("Give up on a fault's recovery after this long (recorded as unrecovered).", valueName: "duration"))
    public var recoveryTimeout: String = "20s"

    @Option(name: .long, help: ArgumentHelp("Allowance over node.deadman_timeout_ms for an orphan quote to disappear.", valueName: "duration"))
    public var orphanSlack: String = "500ms"

    // The older spellings in whole milliseconds, kept for scripts.
    @Option(name: .customLong("recovery-timeout-ms"), help: .hidden) public var recoveryTimeoutMs: Int64?
    @Option(name: .customLong("orphan-slack-ms"), help: .hidden) public var orphanSlackMs: Int64?

    @Option(name: .long, help: "enforce: a missed latency goal fails the drill (default); report: it is only reported (invariants always fail it).",
            completion: .list(["enforce", "report"]))
    public var latencyGoals: String = "enforce"

    @Option(name: .long, help: ArgumentHelp(
        "A program acting on whole hosts, called as PROGRAM partition|heal|kill-host|start-host HOST (exit 0 when done); enables partition-host and kill-host. Scripts/netns-host-fault does it for network namespaces.",
        valueName: "program"), completion: .file())
    public var hostFaultCommand: String?

    @Option(name: .long, help: ArgumentHelp("Comma-separated hosts the host faults may hit (default: any whose loss the cluster survives).", valueName: "hosts"))
    public var faultHosts: String?

    @OptionGroup public var output: OutputOptions

    public var json: Bool { output.json }

    public init() {}

    public func validate() throws {
        _ = try legacyOrDuration(recoveryTimeoutMs, recoveryTimeout, "--recovery-timeout")
        _ = try legacyOrDuration(orphanSlackMs, orphanSlack, "--orphan-slack")
    }

    public mutating func run() async throws {
        let durationMs: Int64
        let kinds: [FaultKind]
        do {
            durationMs = try DurationParser.milliseconds(duration, option: "--duration", atLeast: 1)
            kinds = try FaultKind.parseList(faults)
        } catch {
            printError("mmctl drill: \(error)")
            throw ExitCode(64)
        }
        let connection: ClusterConnection
        do {
            connection = try await ClusterConnection.open(options: cluster, needSupervisorToken: true)
        } catch {
            printError("mmctl drill: \(error)")
            throw ExitCode(64)
        }
        var settings = DrillSettings(durationMs: durationMs, seed: seed, faults: kinds)
        guard let targeting = FaultPlanner.Targeting(rawValue: target) else {
            printError("mmctl drill: --target takes random or busiest, got '\(target)'")
            throw ExitCode(64)
        }
        if let count, count < 1 {
            printError("mmctl drill: --count must be at least 1, got \(count)")
            throw ExitCode(64)
        }
        settings.targeting = targeting
        if let hostFaultCommand {
            guard FileManager.default.isExecutableFile(atPath: hostFaultCommand) else {
                printError("mmctl drill: --host-fault-command \(hostFaultCommand) is not an executable file")
                throw ExitCode(64)
            }
            guard connection.config.isMultiHost else {
                printError("mmctl drill: --host-fault-command needs a cluster placed on several hosts (hosts: in the config)")
                throw ExitCode(64)
            }
            settings.hostFaultCommand = hostFaultCommand
        }
        if let faultHosts {
            let hosts = faultHosts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let survivable = ServiceTargets.expendableHosts(config: connection.config, nodeCount: connection.config.nodeCount)
            if let bad = hosts.first(where: { survivable[$0] == nil }) {
                printError("mmctl drill: --fault-hosts: host '\(bad)' is not one the cluster survives losing (those are: \(survivable.keys.sorted().joined(separator: ", ")); a host with the exchange, GUI, first state replica, local PostgreSQL, every coordinator or an etcd majority is not)")
                throw ExitCode(64)
            }
            settings.faultHosts = hosts
        }
        settings.maximumFaults = count
        settings.recoveryTimeoutMs = try legacyOrDuration(recoveryTimeoutMs, recoveryTimeout, "--recovery-timeout")
        settings.orphanSlackMs = try legacyOrDuration(orphanSlackMs, orphanSlack, "--orphan-slack")
        switch latencyGoals {
        case "enforce": settings.enforceLatencyGoals = true
        case "report": settings.enforceLatencyGoals = false
        default:
            printError("mmctl drill: --latency-goals takes enforce or report, got '\(latencyGoals)'")
            throw ExitCode(64)
        }
        let quiet = json
        let runner = DrillRunner(connection: connection, settings: settings) { line in
            if quiet { printError(line) } else { print(line) }
        }
        let report = await runner.run()
        if json {
            print(String(decoding: try MMJSON.encode(report), as: UTF8.self))
        } else {
            print(report.renderText())
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
