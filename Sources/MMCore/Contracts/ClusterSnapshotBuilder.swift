import Foundation

/// Builds the one read-only view of the whole cluster (`mmctl status`, the GUI's `/api/view`)
/// from every service's inspection endpoints. Reused over any transport: the GUI plugs in
/// AsyncHTTPClient, mmctl plugs in libcurl.
///
/// Every call runs concurrently with a short timeout, so one hung service costs one timeout,
/// not the sum; a service that does not answer is listed in `errors[]` and everything else
/// still renders, because an operator looks at status precisely when something is down.
public struct ClusterSnapshotBuilder: Sendable {
    public static let recentFillLimit = 20
    public static let recentEventLimit = 30

    public let config: ClusterConfig
    public let token: String
    public let transport: any HTTPTransport
    public let timeoutMs: Int64
    public let clock: any EpochClock

    /// `token` is normally the observer token (`DATA_DIR/tokens/observer`): every route used
    /// here is an inspection route that any role may read.
    public init(config: ClusterConfig, token: String, transport: any HTTPTransport, timeoutMs: Int64 = 1_000, clock: any EpochClock = MonotonicEpochClock()) {
        self.config = config
        self.token = token
        self.transport = transport
        self.timeoutMs = timeoutMs
        self.clock = clock
    }

    private func endpoint(_ baseURL: String) -> ServiceEndpoint {
        ServiceEndpoint(baseURL: baseURL, token: token, transport: transport, timeoutMs: timeoutMs)
    }

    /// Everything gathered, before it is joined into a snapshot. Each part is what its
    /// service answered, or why it did not.
    public struct Inputs: Sendable {
        public var processes: Result<ProcessList, ClientError>
        public var supervisorEvents: Result<[ClusterEvent], ClientError>
        public var members: Result<[NodePresence], ClientError>
        public var assignments: Result<AssignmentTable, ClientError>
        public var authority: Result<AuthorityList, ClientError>
        public var coordinatorEvents: Result<[ClusterEvent], ClientError>
        public var prices: Result<[ReferencePrice], ClientError>
        public var quotes: Result<[Quote], ClientError>
        public var fills: Result<[Fill], ClientError>
        public var positions: Result<PositionsView, ClientError>

        public init(
            processes: Result<ProcessList, ClientError>, supervisorEvents: Result<[ClusterEvent], ClientError>,
            members: Result<[NodePresence], ClientError>, assignments: Result<AssignmentTable, ClientError>,
            authority: Result<AuthorityList, ClientError>, coordinatorEvents: Result<[ClusterEvent], ClientError>,
            prices: Result<[ReferencePrice], ClientError>, quotes: Result<[Quote], ClientError>,
            fills: Result<[Fill], ClientError>, positions: Result<PositionsView, ClientError>
        ) {
            self.processes = processes
            self.supervisorEvents = supervisorEvents
            self.members = members
            self.assignments = assignments
            self.authority = authority
            self.coordinatorEvents = coordinatorEvents
            self.prices = prices
            self.quotes = quotes
            self.fills = fills
            self.positions = positions
        }
    }

    /// Gathers every input concurrently and joins them.
    public func snapshot() async -> ClusterSnapshot {
        let inputs = await gather()
        return Self.assemble(config: config, nowMs: clock.nowMs(), inputs: inputs)
    }

    public func gather() async -> Inputs {
        let supervisor = SupervisorClient(endpoint(config.supervisorURL))
        let coordinator = CoordinatorClient(.coordinator(config, token: token, transport: transport, timeoutMs: timeoutMs))
        let exchange = ExchangeClient(endpoint(config.baseURL(of: .exchange)))
        let state = TradingStateClient(.state(config, token: token, transport: transport, timeoutMs: timeoutMs))
        let eventLimit = Self.recentEventLimit
        let fillLimit = Self.recentFillLimit

        async let processes = attempt { () async throws(ClientError) in try await supervisor.processes() }
        async let supervisorEvents = attempt { () async throws(ClientError) in
            try await Self.tail(limit: eventLimit) { after, limit async throws(ClientError) in
                let page = try await supervisor.events(after: after, limit: limit)
                return (page.events, page.headSeq)
            }
        }
        async let members = attempt { () async throws(ClientError) in try await coordinator.members() }
        async let assignments = attempt { () async throws(ClientError) in try await coordinator.assignments() }
        async let authority = attempt { () async throws(ClientError) in try await coordinator.authority() }
        async let coordinatorEvents = attempt { () async throws(ClientError) in
            try await Self.tail(limit: eventLimit) { after, limit async throws(ClientError) in
                let page = try await coordinator.events(after: after, limit: limit, waitMs: 0)
                return (page.events, page.headSeq)
            }
        }
        async let prices = attempt { () async throws(ClientError) in try await exchange.prices() }
        async let quotes = attempt { () async throws(ClientError) in try await exchange.quotes() }
        async let fills = attempt { () async throws(ClientError) in
            try await Self.tail(limit: fillLimit) { after, limit async throws(ClientError) in
                let page = try await exchange.fills(after: after, limit: limit, waitMs: 0)
                return (page.fills, page.headSeq)
            }
        }
        async let positions = attempt { () async throws(ClientError) in try await state.positions() }

        return Inputs(
            processes: await processes, supervisorEvents: await supervisorEvents, members: await members,
            assignments: await assignments, authority: await authority, coordinatorEvents: await coordinatorEvents,
            prices: await prices, quotes: await quotes, fills: await fills, positions: await positions)
    }

    /// The last `limit` entries of a seq-cursored log (`after=SEQ&limit=N`, reporting
    /// `head_seq`). The logs page forward from a cursor, so the head is learnt first with a
    /// one-entry page; when the log is short that first page is already the answer.
    public static func tail<Entry: Sendable>(
        limit: Int,
        page: @Sendable (_ after: Int64, _ limit: Int) async throws(ClientError) -> ([Entry], Int64)
    ) async throws(ClientError) -> [Entry] {
        let (first, head) = try await page(0, limit)
        if head <= Int64(limit) { return first }
        let (last, _) = try await page(head - Int64(limit), limit)
        return last
    }

    private func attempt<T: Sendable>(_ operation: () async throws(ClientError) -> T) async -> Result<T, ClientError> {
        do { return .success(try await operation()) } catch { return .failure(error) }
    }

    // MARK: Pure assembly

    /// Joins the inputs into a snapshot. Pure: no I/O, `nowMs` injected.
    public static func assemble(config: ClusterConfig, nowMs: EpochMs, inputs: Inputs) -> ClusterSnapshot {
        var errors: [ClusterSnapshot.ServiceError] = []
        func value<T>(_ result: Result<T, ClientError>, _ service: String, _ what: String) -> T? {
            switch result {
            case .success(let value): return value
            case .failure(let error):
                let message = "\(what): \(error)"
                if !errors.contains(where: { $0.service == service && $0.error == message }) {
                    errors.append(ClusterSnapshot.ServiceError(service: service, error: message))
                }
                return nil
            }
        }

        let processList = value(inputs.processes, "supervisor", "GET /v1/processes")
        let supervisorEvents = value(inputs.supervisorEvents, "supervisor", "GET /v1/events") ?? []
        let presences = value(inputs.members, "coordinator", "GET /v1/members") ?? []
        let assignmentTable = value(inputs.assignments, "coordinator", "GET /v1/assignments")
        let authorityList = value(inputs.authority, "coordinator", "GET /v1/authority")
        let coordinatorEvents = value(inputs.coordinatorEvents, "coordinator", "GET /v1/events") ?? []
        let prices = value(inputs.prices, "exchange", "GET /v1/prices")
        let quotes = value(inputs.quotes, "exchange", "GET /v1/quotes")
        let fills = value(inputs.fills, "exchange", "GET /v1/fills") ?? []
        let positions = value(inputs.positions, "state", "GET /v1/positions")

        let priceBySymbol = Dictionary((prices ?? []).map { ($0.symbol, $0.price) }, uniquingKeysWith: { _, last in last })
        let quoteBySymbol = Dictionary((quotes ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })
        let positionBySymbol = Dictionary((positions?.positions ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })
        let authorityBySymbol = Dictionary((authorityList?.authority ?? []).map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })

        var totals = ClusterSnapshot.Totals(realizedPnl: 0, unrealizedPnl: 0, fillCount: 0)
        let symbols = config.symbols.map { spec -> ClusterSnapshot.SymbolView in
            let symbol = spec.symbol
            let referencePrice = priceBySymbol[symbol]
            let status = authorityBySymbol[symbol]
            let assignedTo = assignmentTable?.symbols[symbol] ?? status?.assignedTo
            var authority: ClusterSnapshot.Authority?
            if let status, let holder = status.node {
                // The coordinator's own countdown is authoritative; its absolute expiry is
                // the fallback so a clock difference cannot invent time left.
                let left = status.expiresInMs ?? status.expiresAtMs.map { $0 - nowMs } ?? 0
                if left > 0 { authority = ClusterSnapshot.Authority(node: holder, fencingToken: status.fencingToken, expiresInMs: left) }
            }
            let quote = quoteBySymbol[symbol].map {
                ClusterSnapshot.QuoteView(
                    node: $0.node, fencingToken: $0.fencingToken, bid: $0.bidPrice, bidQty: $0.bidQty,
                    ask: $0.askPrice, askQty: $0.askQty, updatedAtMs: $0.updatedAtMs)
            }
            let position = positionBySymbol[symbol].map { position -> ClusterSnapshot.PositionView in
                let unrealized = referencePrice.map { position.unrealizedPnl(at: $0) }
                totals.realizedPnl += position.realizedPnl
                totals.unrealizedPnl += unrealized ?? 0
                totals.fillCount += position.fillCount
                return ClusterSnapshot.PositionView(
                    netQty: position.netQty, avgPrice: position.avgPrice, realizedPnl: position.realizedPnl,
                    unrealizedPnl: unrealized, fillCount: position.fillCount)
            }
            return ClusterSnapshot.SymbolView(
                symbol: symbol, tickSize: spec.tickSize, referencePrice: referencePrice, assignedTo: assignedTo,
                authority: authority, quote: quote, position: position)
        }

        let members = presences
            .sorted { ($0.node.count, $0.node) < ($1.node.count, $1.node) }
            .map { ClusterSnapshot.Member(node: $0.node, status: $0.status, expiresInMs: $0.expiresInMs) }

        // Start order (etcd1…, coordinator, coordinator2…, state, exchange, n1…, gui), unknown names last.
        let processes = (processList?.processes ?? []).sorted { lhs, rhs in
            switch (ClusterProcess(name: lhs.name), ClusterProcess(name: rhs.name)) {
            case (.some(let l), .some(let r)): return l < r
            case (.some, .none): return true
            case (.none, .some): return false
            case (.none, .none): return lhs.name < rhs.name
            }
        }

        let recentFills = Array(fills.sorted { $0.seq > $1.seq }.prefix(recentFillLimit))
        // Two logs with their own seq spaces: time orders them, the source breaks ties
        // stably (coordinator before supervisor), then seq.
        let tagged = coordinatorEvents.map { (0, $0) } + supervisorEvents.map { (1, $0) }
        let recentEvents = tagged
            .sorted { lhs, rhs in
                if lhs.1.tsMs != rhs.1.tsMs { return lhs.1.tsMs > rhs.1.tsMs }
                if lhs.0 != rhs.0 { return lhs.0 < rhs.0 }
                return lhs.1.seq > rhs.1.seq
            }
            .prefix(recentEventLimit)
            .map(\.1)

        return ClusterSnapshot(
            takenAtMs: nowMs,
            supervisor: processList?.supervisor,
            processes: processes,
            members: members,
            assignments: assignmentTable.map { ClusterSnapshot.Assignments(version: $0.version, symbols: $0.symbols) },
            symbols: symbols,
            totals: totals,
            recentFills: recentFills,
            recentEvents: Array(recentEvents),
            errors: errors)
    }
}
