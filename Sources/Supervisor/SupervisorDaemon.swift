import Foundation
import Hummingbird
import Logging
import MMCore
import MMServiceKit
import ProcessKit
import ServiceLifecycle
import Synchronization

/// What `mmd supervise` (started by `mmctl start`) runs.
public struct SupervisorOptions: Sendable {
    public var config: ClusterConfig
    public var dataDirectory: DataDirectory
    public var launch: ChildLaunchSettings
    public var nodeCount: Int
    /// The host whose processes this supervisor runs: one of `config.hostNames`.
    public var host: String
    /// What `config` was resolved from (`ConfigInputs`), stored beside it; nil stores none.
    public var configInputsDigest: String?

    public init(config: ClusterConfig, dataDirectory: DataDirectory, launch: ChildLaunchSettings, nodeCount: Int, host: String? = nil, configInputsDigest: String? = nil) {
        self.configInputsDigest = configInputsDigest
        self.config = config
        self.dataDirectory = dataDirectory
        self.launch = launch
        self.nodeCount = nodeCount
        self.host = host ?? config.hostNames[0]
    }
}

/// The supervisor process: lock, sweep, port check, tokens, then the control API and the
/// process tree until SIGTERM/SIGINT or `POST /v1/shutdown`.
public enum SupervisorDaemon {
    /// Runs the supervisor with logging to stderr at LOG_LEVEL (default info).
    public static func run(_ options: SupervisorOptions, onReady: @escaping @Sendable () async -> Void = {}) async -> Int32 {
        LoggingBootstrap.bootstrap(label: "mmctl-supervisor")
        return await run(options, logger: Logger(label: "supervisor"), onReady: onReady)
    }

    /// Runs the supervisor; returns the process exit code (0 after a clean shutdown).
    /// `onReady` runs once every process is ready (the foreground mode prints status there).
    public static func run(_ options: SupervisorOptions, logger: Logger, onReady: @escaping @Sendable () async -> Void = {}) async -> Int32 {
        let config = options.config
        let dataDirectory = options.dataDirectory
        let lock: DataDirectoryLock
        do {
            try dataDirectory.ensureExists()
            lock = try DataDirectoryLock.acquire(dataDirectory)
        } catch let error as SupervisorError {
            logger.error("\(error)")
            return error.exitCode
        } catch {
            logger.error("cannot prepare data directory \(dataDirectory.path): \(error)")
            return 1
        }
        defer { withExtendedLifetime(lock) {} }

        let swept = LeftoverSweep.run(dataDirectory)
        if !swept.isEmpty { logger.warning("killed \(swept.count) process(es) left by a previous supervisor: \(swept)") }

        let nodeCount = max(1, options.nodeCount)
        let host = options.host
        guard config.hostNames.contains(host) else {
            logger.error("host '\(host)' is not in the configuration's hosts (\(config.hostNames.joined(separator: ", ")))")
            return 64
        }
        if config.runsLocalEtcd && options.launch.etcdPath == nil && config.processes(onHost: host, nodeCount: nodeCount).contains(where: { if case .etcd = $0 { true } else { false } }) {
            logger.error("\(EtcdProgram.notInstalled)")
            return 1
        }
        for (name, address, port) in Self.listeningPorts(config: config, host: host, nodeCount: nodeCount) {
            guard LoopbackSocket.isPortFree(host: address, port: port) else {
                let error = SupervisorError.portInUse(process: name, port: port)
                logger.error("\(error)")
                return error.exitCode
            }
        }

        let tokens: RoleTokens
        do {
            tokens = try ClusterSecrets.tokensForStart(config: config, host: host, dataDirectory: dataDirectory)
            // The old digest goes first: a crash before the new one is written leaves none,
            // never the last start's digest beside this start's config.
            let inputsPath = dataDirectory.effectiveConfigInputsPath
            if FileManager.default.fileExists(atPath: inputsPath) { try FileManager.default.removeItem(atPath: inputsPath) }
            try MMJSON.encode(config, pretty: true).write(to: URL(fileURLWithPath: dataDirectory.effectiveConfigPath), options: .atomic)
            if let digest = options.configInputsDigest {
                try Data((digest + "\n").utf8).write(to: URL(fileURLWithPath: inputsPath), options: .atomic)
            }
        } catch {
            logger.error("cannot write role tokens or effective config in \(dataDirectory.path): \(error)")
            return 1
        }

        let secrets = LiveSecrets(tokens, dataDirectory: dataDirectory)
        let notifier = CoordinatorDeathReporter(config: config, secrets: secrets, logger: logger)
        let supervisor = ProcessSupervisor(config: config, dataDirectory: dataDirectory, launch: options.launch, deathReporter: notifier, logger: logger, host: host)
        let state = SupervisorStateFile(pid: getpid(), url: config.supervisorURL(host: host), startedAtMs: supervisor.startedAtMs)
        try? state.write(dataDirectory)
        defer { try? FileManager.default.removeItem(atPath: dataDirectory.supervisorStatePath) }

        let shutdownRequests = ShutdownRequests()
        let router = buildControlRouter(supervisor: supervisor, secrets: secrets, config: config, shutdown: shutdownRequests)
        // HTTPS with this host's certificate when `tls` is set: an unusable TLS file stops the
        // start here, before any child is spawned.
        do { try TLSServerSetup.validate(config, host: host) } catch {
            logger.error("\(error)")
            return 1
        }
        let app = Application(
            router: router.router,
            server: TLSServerSetup.serverBuilder(config, host: host),
            configuration: .init(address: .hostname(config.address(ofHost: host), port: config.supervisorPort), serverName: "mmd-supervisor"),
            logger: logger)
        let tree = ProcessTreeService(supervisor: supervisor, nodeCount: nodeCount, stopGraceMs: config.supervisor.stopGraceMs, shutdown: shutdownRequests, onReady: onReady, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: app),
                .init(service: tree, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: SecretsReloadService(secrets: secrets, logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        // The supervisor's own log (its stdout and stderr) is rotated like every child's.
        let ownLog = dataDirectory.logPath("supervisor")
        let rotation = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if StandardStreamRotation.rotateIfNeeded(path: ownLog, maxBytes: config.supervisor.logMaxBytes, keep: Int(config.supervisor.logKeep)) {
                    logger.info("rotated \(ownLog) at \(config.supervisor.logMaxBytes) bytes (keeping \(config.supervisor.logKeep))")
                }
            }
        }
        defer { rotation.cancel() }
        do {
            try await group.run()
        } catch {
            logger.error("\(error)")
        }
        // Whatever ended the group, no child may outlive the supervisor.
        await supervisor.stopAll(graceMs: config.supervisor.stopGraceMs)
        if let failure = tree.failure {
            logger.error("\(failure)")
            return failure.exitCode
        }
        return 0
    }

    /// Every port the cluster will listen on, by who listens there: the supervisor's, each
    /// process's, and each local etcd member's peer port too.
    static func listeningPorts(config: ClusterConfig, host: String, nodeCount: Int) -> [(name: String, address: String, port: Int)] {
        var ports: [(name: String, address: String, port: Int)] = [("supervisor", config.address(ofHost: host), config.supervisorPort)]
        for process in config.processes(onHost: host, nodeCount: nodeCount) {
            let address = config.address(of: process)
            ports.append((process.name, address, config.port(of: process)))
            if case .etcd(let member) = process { ports.append(("\(process.name) (peer)", address, config.etcdPeerPort(member))) }
        }
        return ports
    }
}

/// Carries a shutdown request from the control API to the process-tree service.
final class ShutdownRequests: Sendable {
    private let stream: AsyncStream<Int64>
    private let continuation: AsyncStream<Int64>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
    }

    func request(graceMs: Int64) { continuation.yield(graceMs) }

    func next() async -> Int64? {
        for await grace in stream { return grace }
        return nil
    }
}

/// Starts the tree in order, then waits for SIGTERM/SIGINT or `POST /v1/shutdown` and
/// stops it in reverse order.
final class ProcessTreeService: Service, Sendable {
    let supervisor: ProcessSupervisor
    let nodeCount: Int
    let stopGraceMs: Int64
    let shutdown: ShutdownRequests
    let onReady: @Sendable () async -> Void
    let logger: Logger
    private let failureBox = Mutex<SupervisorError?>(nil)

    var failure: SupervisorError? { failureBox.withLock { $0 } }

    init(supervisor: ProcessSupervisor, nodeCount: Int, stopGraceMs: Int64, shutdown: ShutdownRequests, onReady: @escaping @Sendable () async -> Void, logger: Logger) {
        self.supervisor = supervisor
        self.nodeCount = nodeCount
        self.stopGraceMs = stopGraceMs
        self.shutdown = shutdown
        self.onReady = onReady
        self.logger = logger
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // The children's tasks: `run()` returns once `stopAll` has reaped every child.
            group.addTask { await self.supervisor.run() }
            await lifecycle()
            await supervisor.stopAll(graceMs: stopGraceMs)
        }
    }

    private func lifecycle() async {
        // Starting can itself take a while; a SIGTERM meanwhile must still stop everything.
        let started: Bool = await withTaskGroup(of: Bool?.self) { group in
            group.addTask { [supervisor] in
                do {
                    try await supervisor.startAll(nodeCount: self.nodeCount)
                    return true
                } catch let error as SupervisorError {
                    self.failureBox.withLock { $0 = error }
                    return false
                } catch {
                    self.failureBox.withLock { $0 = .io("\(error)") }
                    return false
                }
            }
            group.addTask {
                try? await gracefulShutdown()
                return Task.isCancelled ? nil : false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first ?? false
        }
        guard started else {
            await supervisor.stopAll(graceMs: min(stopGraceMs, 2_000))
            return
        }
        logger.info("cluster is up")
        await onReady()
        let grace: Int64 = await withTaskGroup(of: Int64?.self) { group in
            group.addTask { [shutdown] in await shutdown.next() }
            group.addTask {
                try? await gracefulShutdown()
                return nil
            }
            var chosen: Int64?
            if let first = await group.next() { chosen = first }
            group.cancelAll()
            return chosen ?? self.stopGraceMs
        }
        logger.info("stopping the cluster (grace \(grace) ms per process)")
        await supervisor.stopAll(graceMs: grace)
    }
}

struct SupervisorHealth: Codable, Sendable {
    var status: String
    var detail: String
}

/// The control API: every route in `SupervisorRoutes`, role-checked by `AuthorizedRouter`.
func buildControlRouter(supervisor: ProcessSupervisor, tokens: RoleTokens, config: ClusterConfig, shutdown: ShutdownRequests) -> AuthorizedRouter {
    buildControlRouter(supervisor: supervisor, secrets: LiveSecrets(tokens), config: config, shutdown: shutdown)
}

func buildControlRouter(supervisor: ProcessSupervisor, secrets: LiveSecrets, config: ClusterConfig, shutdown: ShutdownRequests) -> AuthorizedRouter {
    BodyLimit.set(config.http.maxBodyBytes)
    let authorized = AuthorizedRouter(secrets: secrets)
    authorized.router.add(middleware: RequestMetricsMiddleware())
    authorized.openGet(CommonRoutes.healthz) { _, _ in
        try jsonResponse(SupervisorHealth(status: "ok", detail: "supervisor"))
    }
    let metrics = SupervisorMetrics()
    authorized.openGet(CommonRoutes.metrics) { _, _ in
        metrics.update(from: await supervisor.processList())
        return metricsResponse()
    }
    authorized.openGet(CommonRoutes.readyz) { _, _ in
        let phase = await supervisor.phase
        let ready = phase == .running
        return try jsonResponse(SupervisorHealth(status: ready ? "ready" : "not_ready", detail: phase.rawValue), status: ready ? .ok : .serviceUnavailable)
    }
    let info = ServiceInfo(role: "supervisor", name: "supervisor", version: MMVersion.current, pid: getpid(), startedAtMs: supervisor.startedAtMs, configDigest: config.digest)
    // `now_ms` per request: this host's clock, which status compares with its own.
    let clock = MonotonicEpochClock()
    authorized.on(CommonRoutes.info) { _, _ in
        var answer = info
        answer.nowMs = clock.nowMs()
        return answer
    }
    registerControlRoutes(authorized, supervisor: supervisor, config: config, shutdown: shutdown)
    return authorized
}

func registerControlRoutes(_ router: AuthorizedRouter, supervisor: ProcessSupervisor, config: ClusterConfig, shutdown: ShutdownRequests) {
    router.on(SupervisorRoutes.processes) { _, _ in await supervisor.processList() }
    router.on(SupervisorRoutes.signal) { request, context in
        let body = try await request.decode(as: SignalRequest.self, context: context)
        return try await supervisor.signal(named: try context.pathParameter("name"), signal: body.signal)
    }
    router.on(SupervisorRoutes.restart) { _, context in
        try await supervisor.restart(named: try context.pathParameter("name"))
    }
    router.on(SupervisorRoutes.addNode) { _, _ in try await supervisor.addNode() }
    router.on(SupervisorRoutes.removeNode) { _, context in
        try await supervisor.removeNode(named: try context.pathParameter("name"))
    }
    router.on(SupervisorRoutes.shutdown) { request, context in
        var grace = config.supervisor.stopGraceMs
        if request.headers[.contentLength].flatMap(Int.init).map({ $0 > 0 }) ?? false || request.headers[.transferEncoding] != nil {
            let body = try await request.decode(as: ShutdownRequest.self, context: context)
            guard (0...600_000).contains(body.graceMs) else { throw APIError.invalidField("grace_ms", "must be in 0...600000 (got \(body.graceMs))") }
            grace = body.graceMs
        }
        // Answer first, then stop: the caller watches the supervisor's pid to see the end.
        shutdown.request(graceMs: grace)
        return Empty()
    }
    router.on(SupervisorRoutes.events) { request, _ in
        // `wait_ms` is ignored here (no long-poll), so it does not clash with `tail`.
        return await supervisor.eventPage(try request.logCursor(defaultLimit: 200, maxLimit: 2_000))
    }
    router.on(SupervisorRoutes.logs) { request, context in
        let name = try context.pathParameter("name")
        let lines = try request.queryInt("lines", default: 50, range: 0...10_000)
        let path = try await supervisor.logPath(named: name)
        return LogTail(name: name, lines: RotatingLog.tail(path: path, lines: Int(lines)))
    }
}
