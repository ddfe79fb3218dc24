import Hummingbird
import Logging
import MMCore
import MMServiceKit
import ServiceLifecycle

/// Entry point used by `mmd node --id nK [--incarnation X]`.
public enum MarketMakerService {
    public static func run(_ environment: ServiceEnvironment, incarnation: String? = nil, exitWithParent: Bool) async throws {
        let node = MarketMakerNode(environment: environment, incarnation: incarnation)
        let app = buildApplication(environment, router: node.router, services: node.services)
        try await runService(app, environment: environment, exitWithParent: exitWithParent)
    }
}

/// One market-maker node wired together: its state, its loops and its router. Split from
/// `run` so tests can build it over fake authorities and drive it in-process.
public struct MarketMakerNode {
    public let state: NodeState
    public let dependencies: NodeDependencies
    public let time: any MonotonicTimeSource
    public let logger: Logger
    public let router: AuthorizedRouter

    public init(environment: ServiceEnvironment, incarnation: String? = nil) {
        let dependencies = NodeDependencies(
            coordinator: CoordinatorClient(environment.endpoint(of: .coordinator)),
            exchange: ExchangeClient(environment.endpoint(of: .exchange)),
            tradingState: TradingStateClient(environment.endpoint(of: .state)))
        self.init(environment: environment, dependencies: dependencies, time: SystemMonotonicTime(), incarnation: incarnation)
    }

    /// `incarnation` nil: a random one, unique to this start of the process.
    public init(environment: ServiceEnvironment, dependencies: NodeDependencies, time: any MonotonicTimeSource, incarnation: String? = nil) {
        let settings = NodeSettings(
            nodeId: environment.process.name, address: "\(environment.config.scheme)://\(ClusterConfig.urlHost(environment.host)):\(environment.port)", config: environment.config,
            incarnation: incarnation)
        let state = NodeState(settings: settings, time: time, clock: environment.clock, logger: environment.logger)
        self.state = state
        self.dependencies = dependencies
        self.time = time
        self.logger = environment.logger
        self.router = buildNodeRouter(environment, state: state)
    }

    /// The loops, in the order whose reverse is the shutdown order (see NodeLoops.swift).
    public var services: [any Service] {
        [
            PresenceService(state: state, registry: dependencies.presence, logger: logger),
            AssignmentWatcher(state: state, source: dependencies.assignments, logger: logger),
            QuotingEngine(state: state, orders: dependencies.orders, authority: dependencies.authority, time: time, logger: logger),
            GrantAcquirer(state: state, authority: dependencies.authority, orders: dependencies.orders, time: time, logger: logger),
            GrantRenewer(state: state, authority: dependencies.authority, orders: dependencies.orders, time: time, logger: logger),
            PriceFeed(state: state, source: dependencies.prices, logger: logger),
            PositionFeed(state: state, source: dependencies.positions, logger: logger),
        ]
    }
}

/// The node's routes: the common ones plus `GET /v1/status`. `/readyz` turns 200 once the
/// coordinator has accepted a heartbeat, i.e. once the node is a member of the cluster.
public func buildNodeRouter(_ environment: ServiceEnvironment, state: NodeState) -> AuthorizedRouter {
    let router = buildServiceRouter(environment) {
        await state.registered
            ? Readiness.ready
            : Readiness(ready: false, detail: "not registered with the coordinator yet (no heartbeat accepted)")
    }
    router.on(NodeRoutes.status) { _, _ in
        await state.status()
    }
    return router
}
