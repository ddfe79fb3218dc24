import ArgumentParser
import Coordinator
import Exchange
import Foundation
import MarketMaker
import MMCommandLine
import MMCore
import MMServiceKit
import OperatorGUI
import ProcessKit
import Supervisor
import TradingState

/// `mmd ROLE`: one binary for every service, so `ps` shows which role each process plays.
@main
struct MMD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmd",
        abstract: "Market-maker cluster services (normally started by 'mmctl start').",
        version: MMVersion.current,
        subcommands: [ExchangeCommand.self, StateCommand.self, CoordinatorCommand.self, NodeCommand.self, GUICommand.self, SuperviseCommand.self, PostgresCommand.self, ExecCommand.self]
    )
}

/// Options every service takes.
struct ServiceOptions: ParsableArguments {
    @OptionGroup var cluster: ClusterOptionGroup

    @Option(help: "Listen on this port instead of the configured one.")
    var port: Int?

    @Flag(name: .customLong("exit-with-parent"), help: "Exit when stdin closes (set by the supervisor).")
    var exitWithParent = false

    @Option(name: .customLong("supervised-by"), help: "The supervisor's pid: die with it (parent-death signal; set by the supervisor).")
    var supervisedBy: Int32?

    func environment(process: ClusterProcess, role: Role) async throws -> ServiceEnvironment {
        if let supervisedBy { bindToSupervisor(supervisedBy) }
        LoggingBootstrap.bootstrap(label: "mmd")
        MetricsBootstrap.bootstrap()
        let config = try await cluster.loadConfig()
        let dataDirectory = cluster.dataDirectory
        try dataDirectory.ensureExists()
        let tokens = try RoleTokens.loadOrGenerate(in: dataDirectory)
        return ServiceEnvironment(process: process, role: role, config: config, dataDirectory: dataDirectory, tokens: tokens, portOverride: port)
    }
}

struct ExchangeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exchange", abstract: "Exchange simulator: reference prices, matching, fills.",
        subcommands: [Serve.self, Replay.self], defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the exchange service (default).")
        @OptionGroup var options: ServiceOptions
        func run() async throws {
            try await ExchangeService.run(try await options.environment(process: .exchange, role: .exchange), exitWithParent: options.exitWithParent)
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay", abstract: "Recompute the fill log from the journal offline and print its SHA-256.")
        @OptionGroup var options: ServiceOptions
        @Option(name: .customLong("through-seq"), help: "Digest only the first N fills.")
        var throughSeq: Int64?
        func run() async throws {
            let environment = try await options.environment(process: .exchange, role: .exchange)
            print(try await ExchangeService.replay(environment, throughSeq: throughSeq))
        }
    }
}

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Trading state: fill ledger and positions.",
        subcommands: [Serve.self, Migrate.self], defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the trading-state service (default).")
        @OptionGroup var options: ServiceOptions
        @Option(help: "Replica number (1...5; more than 1 needs state.backend=postgres): replica K listens on its own port and logs as stateK.")
        var replica: Int = 1

        func validate() throws { try validateReplica(replica, maximum: ClusterProcess.maxStateReplicas) }

        func run() async throws {
            let process = ClusterProcess.state(replica: replica)
            try await TradingStateService.run(try await options.environment(process: process, role: .state), exitWithParent: options.exitWithParent)
        }
    }

    /// `mmd state migrate --to postgres`: the data directory's SQLite ledger into the
    /// configured PostgreSQL (state.postgres.url and password_file, or the local server's),
    /// verified by fill count, fill-log digest, positions and cursor on both sides. Refuses
    /// while a cluster runs in the data directory (the ledger would move under it).
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate", abstract: "Copy the SQLite ledger into PostgreSQL and verify it (the cluster must be stopped).")
        @OptionGroup var cluster: ClusterOptionGroup
        @Option(help: "Destination store: postgres.") var to: String

        func validate() throws {
            guard to == "postgres" else { throw ValidationError("--to must be 'postgres' (got '\(to)')") }
        }

        func run() async throws {
            LoggingBootstrap.bootstrap(label: "mmd")
            let config = try await cluster.loadConfig()
            let dataDirectory = cluster.dataDirectory
            let lock: DataDirectoryLock
            do { lock = try DataDirectoryLock.acquire(dataDirectory) } catch {
                throw MigrateFailure("refusing to migrate: \(error) — stop the cluster first ('mmctl stop')")
            }
            defer { withExtendedLifetime(lock) {} }
            let sqlitePath = dataDirectory.databasePath("state")
            guard FileManager.default.fileExists(atPath: sqlitePath) else {
                throw MigrateFailure("no SQLite ledger at \(sqlitePath): nothing to migrate")
            }
            // With no url the destination is the local server the cluster will run: start it
            // here (initdb on first use) for the copy, and stop it after.
            var localServer: Process?
            if config.runsLocalPostgres {
                localServer = try await startLocalPostgres(config: config)
            }
            defer {
                if let localServer, localServer.isRunning {
                    kill(localServer.processIdentifier, SIGINT)
                    localServer.waitUntilExit()
                }
            }
            let passwordFile = config.runsLocalPostgres ? dataDirectory.postgresPasswordPath : config.state.postgres.passwordFile
            let source = try GRDBLedgerRepository(path: sqlitePath, symbols: config.symbolNames)
            let settings = try PostgresLedgerSettings(url: config.statePostgresURL, passwordFile: passwordFile)
            let destination = try await PostgresLedgerRepository.open(settings: settings, symbols: config.symbolNames)
            do {
                let report = try await LedgerMigration.copy(from: source, to: destination, atMs: MonotonicEpochClock().nowMs())
                print("migrated \(sqlitePath) to \(settings): \(report)")
                print("now start the cluster with --set state.backend=postgres" + (config.runsLocalPostgres ? "" : " (and the same url and password_file)"))
            } catch {
                await destination.close()
                throw error
            }
            await destination.close()
        }

        /// `mmd postgres` for this data directory, as the supervisor would run it, until it accepts connections.
        private func startLocalPostgres(config: ClusterConfig) async throws -> Process {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            if !FileManager.default.isExecutableFile(atPath: server.executableURL!.path) {
                server.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            }
            var arguments = ["postgres", "--data-dir", cluster.dataDirectory.path]
            if let configPath = cluster.config { arguments += ["--config", configPath] }
            for item in cluster.overrides { arguments += ["--set", item] }
            server.arguments = arguments
            try server.run()
            for _ in 0..<600 {
                if await LocalPostgres.isAccepting(host: config.address(of: .postgres), port: config.port(of: .postgres)) { return server }
                guard server.isRunning else { throw MigrateFailure("the local PostgreSQL did not start (exit \(server.terminationStatus)); see the messages above") }
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(server.processIdentifier, SIGINT)
            throw MigrateFailure("the local PostgreSQL did not accept connections within 60 s")
        }
    }
}

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coordinator", abstract: "Membership, assignments and fenced authority grants.")
    @OptionGroup var options: ServiceOptions
    @Option(help: "Replica number (1...5; more than 1 needs coordinator.backend=etcd): replica K listens on its own port and logs as coordinatorK.")
    var replica: Int = 1

    func validate() throws { try validateReplica(replica, maximum: ClusterProcess.maxCoordinatorReplicas) }

    func run() async throws {
        let process = ClusterProcess.coordinator(replica: replica)
        try await CoordinatorService.run(try await options.environment(process: process, role: .coordinator), exitWithParent: options.exitWithParent)
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "A market-maker node: quotes the symbols it holds authority for.")
    @OptionGroup var options: ServiceOptions
    @Option(help: "Node index: 1 gives node id n1 and port base+11.")
    var id: String
    @Option(help: "This start of the process, unique per start (1-64 of A-Z a-z 0-9 . _ : -); sent with every heartbeat so a death notice ends only this process. Default: random.")
    var incarnation: String?

    func validate() throws {
        if let incarnation, !Incarnation.isValid(incarnation) {
            throw ValidationError("--incarnation must be 1-\(Incarnation.maxBytes) characters of A-Z a-z 0-9 . _ : - (got '\(incarnation)')")
        }
    }

    func run() async throws {
        guard let process = ClusterProcess(name: id), case .node = process else {
            throw ValidationError("--id must be nK with K in 1...\(ClusterConfig.maxNodes), e.g. n1 (got '\(id)')")
        }
        try await MarketMakerService.run(
            try await options.environment(process: process, role: .node), incarnation: incarnation, exitWithParent: options.exitWithParent)
    }
}

struct GUICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gui", abstract: "Read-only operator dashboard (web).")
    @OptionGroup var options: ServiceOptions
    func run() async throws {
        try await OperatorGUIService.run(try await options.environment(process: .gui, role: .observer), exitWithParent: options.exitWithParent)
    }
}

/// `--replica K` of a replicated service: 1...maximum.
func validateReplica(_ replica: Int, maximum: Int) throws {
    guard (1...maximum).contains(replica) else { throw ValidationError("--replica must be in 1...\(maximum) (got \(replica))") }
}

/// Arms SIGKILL on the supervisor's death (it spawns from one long-lived thread, so the
/// kernel's "parent thread exited" is the supervisor's death). If the supervisor is already
/// gone, there is nobody to serve: exit at once.
func bindToSupervisor(_ supervisorPid: Int32) {
    switch ParentDeathSignal.arm(signal: SIGKILL, expectedParent: supervisorPid) {
    case .armed:
        break
    case .parentAlreadyGone(let parent):
        FileHandle.standardError.write(Data("mmd: supervisor \(supervisorPid) is gone (parent is now \(parent)): exiting\n".utf8))
        exit(3)
    case .failed(let code):
        FileHandle.standardError.write(Data("mmd: cannot arm the parent-death signal: \(String(cString: strerror(code))); relying on stdin EOF\n".utf8))
    }
}

/// `mmd exec --supervised-by PID -- PROGRAM [ARG…]`: how the supervisor runs a program that
/// is not mmd (a local etcd member) so that it, too, dies with the supervisor however the
/// supervisor dies. The parent-death signal is armed here, then this process becomes PROGRAM
/// by execve: the setting survives execve (it is cleared only for set-user-ID or
/// set-capability programs), and the pid and process group stay the ones the supervisor knows.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Become PROGRAM, bound to the supervisor's life (the supervisor runs local etcd members this way).")

    @Option(name: .customLong("supervised-by"), help: "The supervisor's pid: PROGRAM gets SIGKILL when it dies.")
    var supervisedBy: Int32

    @Argument(parsing: .postTerminator, help: "-- PROGRAM [ARG…]: an absolute path and its arguments.")
    var command: [String] = []

    func validate() throws {
        guard let program = command.first, program.hasPrefix("/") else {
            throw ValidationError("expected -- PROGRAM [ARG…] with PROGRAM an absolute path")
        }
    }

    func run() async throws {
        bindToSupervisor(supervisedBy)
        try becomeProgram(command, as: "mmd exec")
    }
}

/// Replaces this process by `command` (absolute path first) with a clean signal state:
/// execve keeps the signal mask and ignored signals, and the program starts with neither.
/// Returns only by throwing, when the exec failed.
func becomeProgram(_ command: [String], as name: String) throws -> Never {
    var empty = sigset_t()
    sigemptyset(&empty)
    pthread_sigmask(SIG_SETMASK, &empty, nil)
    for number in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD] { signal(number, SIG_DFL) }
    let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
    execv(command[0], argv)
    FileHandle.standardError.write(Data("\(name): cannot run \(command[0]): \(String(cString: strerror(errno)))\n".utf8))
    throw ExitCode(127)
}

/// `mmd postgres`: the local PostgreSQL of `state.backend: postgres` (no url), as the supervisor
/// runs it. Prepares DATA_DIR/postgres (password, initdb on the first start), drops to the
/// `postgres` user when root, arms the parent-death signal (after the credential change, which
/// would clear it) and becomes Debian's PostgreSQL 15 server by execve, keeping the pid the
/// supervisor knows.
struct PostgresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres", abstract: "Run the cluster's local PostgreSQL (started by the supervisor for state.backend=postgres).")
    @OptionGroup var options: ServiceOptions

    func run() async throws {
        let config = try await options.cluster.loadConfig()
        let local = LocalPostgres(config: config, dataDirectory: options.cluster.dataDirectory)
        do {
            try local.prepare()
            try local.dropPrivileges()
        } catch {
            FileHandle.standardError.write(Data("mmd postgres: \(error)\n".utf8))
            throw ExitCode(78)
        }
        if let supervisedBy = options.supervisedBy { bindToSupervisor(supervisedBy) }
        try becomeProgram(local.serverArguments, as: "mmd postgres")
    }
}

/// A migration that cannot proceed: the message says why and what to do (no usage text).
struct MigrateFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `mmd supervise`: the supervisor daemon `mmctl start` runs (not for operators).
struct SuperviseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise", abstract: "Run the supervisor: spawn, watch and restart every process of the cluster (started by 'mmctl start').")

    /// `--set` items are passed on to every child unchanged.
    @OptionGroup var cluster: ClusterOptionGroup

    func run() async throws {
        // Read before and after resolving: a file edited meanwhile stores no digest, so a
        // later command cannot take this config for the file's new bytes.
        let inputs = try cluster.configInputsDigest()
        let clusterConfig = try await cluster.loadConfig()
        let inputsAfter = try cluster.configInputsDigest()
        let options = SupervisorOptions(
            config: clusterConfig, dataDirectory: cluster.dataDirectory,
            launch: ChildLaunchSettings(mmdPath: currentExecutablePath(), configPath: cluster.config.map { DataDirectory($0).path }, overrides: cluster.overrides),
            nodeCount: clusterConfig.nodeCount,
            host: try cluster.resolveHost(config: clusterConfig, isLocalAddress: HostChecks.isLocalAddress),
            configInputsDigest: inputs == inputsAfter ? inputs : nil)
        let code = await SupervisorDaemon.run(options)
        if code != 0 { throw ExitCode(code) }
    }
}
