import MMCore

/// Watching the coordinator's assignment table (long-poll on its version).
public protocol AssignmentSource: Sendable {
    func assignments(afterVersion: Int64?, waitMs: Int64) async throws(ClientError) -> AssignmentTable
}

extension CoordinatorClient: AssignmentSource {}

/// The authorities the node reads from and acts through. In production these are the typed
/// HTTP clients; tests plug in in-memory fakes to drive the loops without any network.
public struct NodeDependencies: Sendable {
    public var presence: any PresenceRegistry
    public var authority: any AuthorityProvider
    public var assignments: any AssignmentSource
    public var orders: any OrderEntry
    public var prices: any ReferencePriceSource
    public var positions: any PositionSource

    public init(
        presence: any PresenceRegistry, authority: any AuthorityProvider, assignments: any AssignmentSource, orders: any OrderEntry,
        prices: any ReferencePriceSource, positions: any PositionSource
    ) {
        self.presence = presence
        self.authority = authority
        self.assignments = assignments
        self.orders = orders
        self.prices = prices
        self.positions = positions
    }

    /// The typed clients over the cluster's HTTP endpoints, authenticated with the node token.
    public init(coordinator: CoordinatorClient, exchange: ExchangeClient, tradingState: TradingStateClient) {
        self.init(presence: coordinator, authority: coordinator, assignments: coordinator, orders: exchange, prices: exchange, positions: tradingState)
    }
}
