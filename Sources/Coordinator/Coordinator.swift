import Foundation
import Hummingbird
import Logging
import MMCore
import MMServiceKit
import ServiceLifecycle

/// Entry point used by `mmd coordinator`.
public enum CoordinatorService {
    public static func run(_ environment: ServiceEnvironment, exitWithParent: Bool) async throws {
        let store = try GRDBCoordinatorStore(path: environment.dataDirectory.databasePath("coordinator"))
        let engine = try await makeCoordinatorEngine(environment, store: store)
        let app = buildCoordinatorApplication(environment, engine: engine)
        try await runService(app, environment: environment, exitWithParent: exitWithParent) { engine.endLongPolls() }
    }
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
        policy: CoordinatorPolicy(environment.config), store: store, signer: try GrantSigner(dataDirectory: environment.dataDirectory),
        clock: environment.clock, logger: environment.logger)
}

/// The application around an existing engine (so the caller can also end its long-polls).
public func buildCoordinatorApplication(
    _ environment: ServiceEnvironment, engine: CoordinatorEngine, sweepIntervalMs: Int64? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol & Service {
    let router = buildCoordinatorRouter(environment, engine: engine)
    let interval = sweepIntervalMs ?? CoordinatorSweeper.interval(for: environment.config)
    return buildApplication(environment, router: router, services: [CoordinatorSweeper(engine: engine, intervalMs: interval)], onServerRunning: onServerRunning)
}

/// Every coordinator route over `engine`.
public func buildCoordinatorRouter(_ environment: ServiceEnvironment, engine: CoordinatorEngine) -> AuthorizedRouter {
    let router = buildServiceRouter(environment) {
        let quiet = await engine.quietForMs
        let waiting = await engine.quietSymbolCount
        return Readiness(
            ready: true,
            detail: quiet > 0 ? "ready (startup quiet period: \(waiting) symbol(s) not re-adopted by their holder wait \(quiet) ms more)" : "ready")
    }

    router.on(CoordinatorRoutes.heartbeat) { request, context in
        let node = try context.pathParameter("node")
        let body = try await request.decode(as: HeartbeatRequest.self, context: context)
        return try await engine.heartbeat(node: node, address: body.address, incarnation: body.incarnation)
    }
    router.on(CoordinatorRoutes.leave) { _, context in
        try await engine.leave(node: try context.pathParameter("node"))
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
        let waitMs = body.waitMs ?? 0
        guard (0...coordinatorMaxWaitMs).contains(waitMs) else {
            throw APIError.invalidField("wait_ms", "must be an integer in 0...\(coordinatorMaxWaitMs) (got \(waitMs))")
        }
        return try await engine.acquire(symbol: symbol, node: body.node, waitMs: waitMs)
    }
    router.on(CoordinatorRoutes.renew) { request, context in
        let symbol = try context.pathParameter("symbol")
        let body = try await request.decode(as: RenewRequest.self, context: context)
        return try await engine.renew(symbol: symbol, node: body.node, fencingToken: body.fencingToken, presented: body.grant)
    }
    router.on(CoordinatorRoutes.release) { request, context in
        let symbol = try context.pathParameter("symbol")
        let body = try await request.decode(as: RenewRequest.self, context: context)
        return try await engine.release(symbol: symbol, node: body.node, fencingToken: body.fencingToken)
    }
    router.on(CoordinatorRoutes.renewBatch) { request, context in
        let body = try await request.decode(as: BatchRenewRequest.self, context: context)
        return try await engine.renew(body)
    }
    router.on(CoordinatorRoutes.authority) { _, _ in
        await engine.authority()
    }
    router.on(CoordinatorRoutes.authorityOf) { _, context in
        try await engine.authority(symbol: try context.pathParameter("symbol"))
    }
    router.on(CoordinatorRoutes.events) { request, _ in
        let after = try request.queryInt("after", default: 0, range: 0...Int64.max)
        let limit = try request.queryInt("limit", default: 200, range: 1...1_000)
        let waitMs = try request.queryInt("wait_ms", default: 0, range: 0...coordinatorMaxWaitMs)
        return try await engine.events(after: after, limit: Int(limit), waitMs: waitMs)
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
