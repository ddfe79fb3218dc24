import AsyncHTTPClient
import EtcdKit
import Foundation
import Hummingbird
import Logging
import MMCore
import MMServiceKit
import ServiceLifecycle

/// Entry point used by `mmd coordinator`.
public enum CoordinatorService {
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        switch environment.config.coordinator.backend {
        case .embedded:
            let store = try GRDBCoordinatorStore(
                path: environment.dataDirectory.databasePath("coordinator"), retention: EventRetention(retain: environment.config.coordinator.eventsRetain),
                logger: environment.logger)
            let engine = try await makeCoordinatorEngine(environment, store: store)
            let app = buildCoordinatorApplication(environment, engine: engine)
            try await runService(app, environment: environment, exitWithParent: exitWithParent) { engine.endLongPolls() }
        case .etcd:
            let httpClient = EtcdClient.makeHTTPClient(connectTimeout: .milliseconds(environment.config.coordinator.etcd.requestTimeoutMs))
            do {
                let store = try makeEtcdCoordinatorStore(environment, httpClient: httpClient)
                let engine = try await makeCoordinatorEngine(environment, sharedStore: store, bootstrap: try await embeddedStateToCarryOver(environment))
                let app = buildCoordinatorApplication(environment, engine: engine)
                try await runService(app, environment: environment, exitWithParent: exitWithParent) { engine.endLongPolls() }
            } catch {
                try? await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }

    /// The state of an embedded run in this data directory, if there was one: a shared store
    /// that is still empty starts from its tokens (and members), so moving a cluster from
    /// SQLite to etcd never reissues a token the exchange has already seen.
    static func embeddedStateToCarryOver(_ environment: ServiceEnvironment) async throws -> RecoveredCoordinatorState? {
        let path = environment.dataDirectory.databasePath("coordinator")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try await GRDBCoordinatorStore(path: path).load()
    }
}

/// The etcd store of `environment`'s cluster: the configured endpoints (or the local members
/// `mmctl` runs), the configured prefix, and attempts short enough that a stopped member is
/// skipped while grants still run.
public func makeEtcdCoordinatorStore(_ environment: ServiceEnvironment, httpClient: HTTPClient) throws -> EtcdCoordinatorStore {
    let settings = environment.config.coordinator.etcd
    let timeout = Duration.milliseconds(settings.requestTimeoutMs)
    let client = try EtcdClient(
        endpoints: environment.config.etcdEndpoints, httpClient: httpClient,
        configuration: EtcdClient.Configuration(attemptTimeout: timeout / 2, requestTimeout: timeout), logger: environment.logger)
    return EtcdCoordinatorStore(
        client: client, prefix: settings.prefix, retention: EventRetention(retain: environment.config.coordinator.eventsRetain), logger: environment.logger)
}

/// A replica over a shared store, with the environment's policy, signing key, clock and logger.
public func makeCoordinatorEngine(
    _ environment: ServiceEnvironment, sharedStore: any SharedCoordinatorStore, bootstrap: RecoveredCoordinatorState? = nil
) async throws -> CoordinatorEngine {
    await CoordinatorEngine(
        policy: CoordinatorPolicy(environment.config), sharedStore: sharedStore, signer: try environment.secrets.grantSigner(),
        clock: environment.clock, bootstrap: bootstrap, logger: environment.logger)
}

/// Longest a long-poll may be asked to wait; longer requests are refused with 400 so a
/// client bug shows up at once instead of as a hung request.
public let coordinatorMaxWaitMs: Int64 = 60_000

/// The coordinator's whole application: engine on the given store, routes, sweeper.
public func buildCoordinatorApplication(
    _ environment: ServiceEnvironment, store: any CoordinatorStore, sweepIntervalMs: Int64? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol & Service {
    buildCoordinatorApplication(
        environment, engine: try await makeCoordinatorEngine(environment, store: store), sweepIntervalMs: sweepIntervalMs,
        onServerRunning: onServerRunning)
}

/// The engine over `store` with the environment's policy, signing key, clock and logger.
public func makeCoordinatorEngine(_ environment: ServiceEnvironment, store: any CoordinatorStore) async throws -> CoordinatorEngine {
    try await CoordinatorEngine(
        policy: CoordinatorPolicy(environment.config), store: store, signer: try environment.secrets.grantSigner(),
        clock: environment.clock, logger: environment.logger)
}

/// The application around an existing engine (so the caller can also end its long-polls).
public func buildCoordinatorApplication(
    _ environment: ServiceEnvironment, engine: CoordinatorEngine, sweepIntervalMs: Int64? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol & Service {
    let router = buildCoordinatorRouter(environment, engine: engine)
    let interval = sweepIntervalMs ?? CoordinatorSweeper.interval(for: environment.config)
    var services: [any Service] = [
        CoordinatorSweeper(engine: engine, intervalMs: interval),
        TokenFloorSync(engine: engine, exchange: ExchangeClient(environment.endpoint(of: .exchange, timeoutMs: 2_000)), logger: environment.logger),
    ]
    if let store = engine.sharedStore { services.append(CoordinatorReplicaFollower(engine: engine, store: store, logger: environment.logger)) }
    return buildApplication(environment, router: router, services: services, onServerRunning: onServerRunning)
}

/// Every coordinator route over `engine`.
public func buildCoordinatorRouter(_ environment: ServiceEnvironment, engine: CoordinatorEngine) -> AuthorizedRouter {
    let router = buildServiceRouter(environment) {
        if engine.sharedStore != nil, await !engine.isHealthy {
            return Readiness(ready: false, detail: "not ready: cannot use the coordinator state in etcd: \(await engine.storeError ?? "not read yet")")
        }
        let quiet = await engine.quietForMs
        let waiting = await engine.quietSymbolCount
        return Readiness(
            ready: true,
            detail: quiet > 0 ? "ready (startup quiet period: \(waiting) symbol(s) not re-adopted by their holder wait \(quiet) ms more)" : "ready")
    }

    router.on(CoordinatorRoutes.heartbeat) { request, context in
        let node = try context.pathParameter("node")
        try context.requireActing(as: node)
        let body = try await request.decode(as: HeartbeatRequest.self, context: context)
        return try await engine.heartbeat(node: node, address: body.address, incarnation: body.incarnation)
    }
    router.on(CoordinatorRoutes.leave) { _, context in
        let node = try context.pathParameter("node")
        try context.requireActing(as: node)
        return try await engine.leave(node: node)
    }
    router.on(CoordinatorRoutes.death) { request, context in
        let node = try context.pathParameter("node")
        let body = try await request.decode(as: DeathNotice.self, context: context)
        return try await engine.memberDied(node: node, body)
    }
    router.on(CoordinatorRoutes.members) { _, _ in
        MemberList(members: await engine.members())
    }
    router.on(CoordinatorRoutes.assignments) { request, _ in
        let after = try request.queryIntIfPresent("after_version", range: 0...Int64.max)
        let waitMs = try request.queryInt("wait_ms", default: 0, range: 0...coordinatorMaxWaitMs)
        return await engine.assignments(afterVersion: after, waitMs: waitMs)
    }
    router.on(CoordinatorRoutes.acquire) { request, context in
        let symbol = try context.pathParameter("symbol")
        let body = try await request.decode(as: AcquireRequest.self, context: context)
        try context.requireActing(as: body.node)
        let waitMs = body.waitMs ?? 0
        guard (0...coordinatorMaxWaitMs).contains(waitMs) else {
            throw APIError.invalidField("wait_ms", "must be an integer in 0...\(coordinatorMaxWaitMs) (got \(waitMs))")
        }
        return try await engine.acquire(symbol: symbol, node: body.node, waitMs: waitMs)
    }
    router.on(CoordinatorRoutes.renew) { request, context in
        let symbol = try context.pathParameter("symbol")
        let body = try await request.decode(as: RenewRequest.self, context: context)
        try context.requireActing(as: body.node)
        return try await engine.renew(symbol: symbol, node: body.node, fencingToken: body.fencingToken, presented: body.grant)
    }
    router.on(CoordinatorRoutes.release) { request, context in
        let symbol = try context.pathParameter("symbol")
        let body = try await request.decode(as: RenewRequest.self, context: context)
        try context.requireActing(as: body.node)
        return try await engine.release(symbol: symbol, node: body.node, fencingToken: body.fencingToken)
    }
    router.on(CoordinatorRoutes.renewBatch) { request, context in
        let body = try await request.decode(as: BatchRenewRequest.self, context: context)
        try context.requireActing(as: body.node)
        return try await engine.renew(body)
    }
    router.on(CoordinatorRoutes.authority) { _, _ in
        await engine.authority()
    }
    router.on(CoordinatorRoutes.authorityOf) { _, context in
        try await engine.authority(symbol: try context.pathParameter("symbol"))
    }
    router.on(CoordinatorRoutes.events) { request, _ in
        let cursor = try request.logCursor(defaultLimit: 200, maxLimit: 1_000, waitParameter: "wait_ms")
        let waitMs = try request.queryInt("wait_ms", default: 0, range: 0...coordinatorMaxWaitMs)
        switch cursor {
        case .after(let after, let limit): return try await engine.events(after: after, limit: limit, waitMs: waitMs)
        case .tail(let count): return try await engine.events(tail: count)
        }
    }
    router.on(CoordinatorRoutes.eventsBase) { _, _ in
        try await engine.eventBase()
    }
    return router
}

/// Expires silent members and lapsed grants on the injected clock, so their events and the
/// resulting rebalance appear within one interval rather than at the next request.
public struct CoordinatorSweeper: Service {
    let engine: CoordinatorEngine
    let intervalMs: Int64

    public init(engine: CoordinatorEngine, intervalMs: Int64) {
        self.engine = engine
        self.intervalMs = intervalMs
    }

    /// 50 ms, or a tenth of the shorter TTL when TTLs are very short (tests).
    public static func interval(for config: ClusterConfig) -> Int64 {
        max(5, min(50, min(config.coordinator.presenceTtlMs, config.coordinator.grantTtlMs) / 10))
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(intervalMs))
            await engine.sweep()
        }
        // In a real process `runService` ended the long-polls as shutdown began; this covers an
        // application run some other way (in-process tests, benchmarks).
        engine.endLongPolls()
    }
}

/// Keeps a replica's state current while other replicas write: watches the state's version in
/// etcd and reads the state again when it moves, so reads and long-polls here are fresh and a
/// takeover needs no retry. Also retries the first load while etcd is unreachable.
public struct CoordinatorReplicaFollower: Service {
    let engine: CoordinatorEngine
    let store: any SharedCoordinatorStore
    let logger: Logger

    public init(engine: CoordinatorEngine, store: any SharedCoordinatorStore, logger: Logger) {
        self.engine = engine
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if await !engine.isHealthy {
                    await engine.resync()
                    if await !engine.isHealthy {
                        try? await Task.sleep(for: .milliseconds(CoordinatorEngine.storeRetryAfterMs / 2))
                        continue
                    }
                }
                do {
                    for try await revision in store.stateRevisions(after: await engine.revision) {
                        await engine.followed(revision: revision)
                    }
                } catch {
                    if Task.isCancelled { break }
                    logger.debug("watch of the coordinator state ended (\(error)); reading it again")
                }
                // Whatever was written while the watch was down.
                await engine.resync()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// Once the exchange answers, raises the fencing counters to the highest tokens it has ever
/// accepted (`GET /v1/stats`). The exchange is the one place every token ends up, whichever
/// coordinator store issued it, so this keeps tokens strictly increasing across a backend
/// switch (etcd back to SQLite) or a lost store; a token the exchange has seen is never issued
/// again. Until it runs, a lower token is merely refused by the exchange (stale), never unsafe.
public struct TokenFloorSync: Service {
    let engine: CoordinatorEngine
    let exchange: ExchangeClient
    let logger: Logger
    let retryMs: Int64

    public init(engine: CoordinatorEngine, exchange: ExchangeClient, logger: Logger, retryMs: Int64 = 500) {
        self.engine = engine
        self.exchange = exchange
        self.logger = logger
        self.retryMs = retryMs
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let stats = try await exchange.stats()
                    let raised = try await engine.raiseTokens(toAtLeast: stats.highestTokens)
                    if !raised.isEmpty { logger.warning("fencing counters were behind the exchange's; raised: \(raised.joined(separator: ", "))") }
                    break
                } catch {
                    // The exchange starts after the coordinator; keep asking until it answers.
                    try? await Task.sleep(for: .milliseconds(retryMs))
                }
            }
        }
        // A service that returns ends the whole application: stay until shutdown.
        try? await gracefulShutdown()
    }
}
