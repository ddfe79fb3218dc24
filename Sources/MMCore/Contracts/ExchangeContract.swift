import Foundation

// MARK: Exchange: reference prices, matching, quotes, fills. Only the exchange creates fills.

public enum ExchangeRoutes {
    public static let symbols = RouteSpec.read("/v1/symbols")
    public static let prices = RouteSpec.read("/v1/prices")
    public static let price = RouteSpec.read("/v1/prices/{symbol}")
    public static let quotes = RouteSpec.read("/v1/quotes")
    public static let replaceQuote = RouteSpec(.PUT, "/v1/quotes/{symbol}", roles: [.node])
    public static let cancelQuote = RouteSpec(.DELETE, "/v1/quotes/{symbol}", roles: [.node])
    public static let submitOrder = RouteSpec(.POST, "/v1/orders", roles: [.node])
    public static let cancelOrder = RouteSpec(.DELETE, "/v1/orders/{order_id}", roles: [.node])
    public static let deadman = RouteSpec(.POST, "/v1/deadman", roles: [.node])
    public static let book = RouteSpec.read("/v1/book/{symbol}")
    /// `?after=SEQ&limit=N&wait_ms=W`: fills with seq > after, long-polling up to W ms.
    public static let fills = RouteSpec.read("/v1/fills")
    public static let stats = RouteSpec.read("/v1/stats")

    public static let all: [RouteSpec] = [symbols, prices, price, quotes, replaceQuote, cancelQuote, submitOrder, cancelOrder, deadman, book, fills, stats]
}

/// Error codes only the exchange returns (besides the common ones in `APIError`).
public enum ExchangeErrorCode {
    public static let invalidGrant = "invalid_grant"            // 403
    public static let grantExpired = "grant_expired"            // 409
    public static let staleFencingToken = "stale_fencing_token" // 409
    public static let offTickGrid = "off_tick_grid"             // 400
    public static let absurdSize = "absurd_size"                // 400
    public static let crossedQuote = "crossed_quote"            // 400
    public static let unknownOrder = "unknown_order"            // 404
    public static let orderNotOpen = "order_not_open"           // 409
    public static let wouldSelfTrade = "would_self_trade"       // 409
    public static let clientOrderIdReused = "client_order_id_reused" // 409
}

public struct SymbolList: Codable, Sendable, Hashable {
    public var symbols: [SymbolSpec]
    public init(symbols: [SymbolSpec]) { self.symbols = symbols }
}

public struct PriceList: Codable, Sendable, Hashable {
    public var prices: [ReferencePrice]
    public init(prices: [ReferencePrice]) { self.prices = prices }
}

public struct QuoteList: Codable, Sendable, Hashable {
    public var quotes: [Quote]
    public init(quotes: [Quote]) { self.quotes = quotes }
}

public struct QuoteCancelResult: Codable, Sendable, Hashable {
    public var symbol: String
    /// False when there was no resting quote (cancelling is idempotent).
    public var cancelled: Bool
    public init(symbol: String, cancelled: Bool) {
        self.symbol = symbol
        self.cancelled = cancelled
    }
}

public struct DeadmanRequest: Codable, Sendable, Hashable {
    public var node: String
    public var timeoutMs: Int64
    public init(node: String, timeoutMs: Int64) {
        self.node = node
        self.timeoutMs = timeoutMs
    }
}

public struct DeadmanStatus: Codable, Sendable, Hashable {
    public var node: String
    public var armedUntilMs: EpochMs
    public init(node: String, armedUntilMs: EpochMs) {
        self.node = node
        self.armedUntilMs = armedUntilMs
    }
}

public struct BookLevel: Codable, Sendable, Hashable {
    public var price: Ticks
    public var qty: Lots
    public var orders: Int
    public init(price: Ticks, qty: Lots, orders: Int) {
        self.price = price
        self.qty = qty
        self.orders = orders
    }
}

public struct BookDepth: Codable, Sendable, Hashable {
    public var symbol: String
    /// Best first.
    public var bids: [BookLevel]
    public var asks: [BookLevel]
    public init(symbol: String, bids: [BookLevel], asks: [BookLevel]) {
        self.symbol = symbol
        self.bids = bids
        self.asks = asks
    }
}

public struct FillPage: Codable, Sendable, Hashable {
    public var fills: [Fill]
    /// The highest seq the log holds now.
    public var headSeq: Int64
    public init(fills: [Fill], headSeq: Int64) {
        self.fills = fills
        self.headSeq = headSeq
    }
}

public struct ExchangeStats: Codable, Sendable, Hashable {
    public var fillCount: Int64
    /// SHA-256 over fills 1…fill_count, each as canonical JSON plus "\n" (see `FillLogDigest`).
    public var fillLogSha256: String
    public var orderCount: Int64
    public var journalSeq: Int64
    public var rejections: [String: Int64]
    /// Highest fencing token accepted per symbol.
    public var highestTokens: [String: Int64]
    /// Requests accepted with a token lower than one already seen: must stay 0.
    public var staleAccepted: Int64

    public init(fillCount: Int64, fillLogSha256: String, orderCount: Int64, journalSeq: Int64, rejections: [String: Int64], highestTokens: [String: Int64], staleAccepted: Int64) {
        self.fillCount = fillCount
        self.fillLogSha256 = fillLogSha256
        self.orderCount = orderCount
        self.journalSeq = journalSeq
        self.rejections = rejections
        self.highestTokens = highestTokens
        self.staleAccepted = staleAccepted
    }
}

/// The byte-exact fill-log digest shared by the live exchange, `mmd exchange replay` and checkers.
public struct FillLogDigest {
    private var hasher = IncrementalSHA256()
    public private(set) var count: Int64 = 0

    public init() {}

    public mutating func append(_ fill: Fill) {
        // Canonical: sorted keys, snake_case, no whitespace, then one newline.
        let encoded = (try? MMJSON.encode(fill)) ?? Data()
        hasher.update(encoded)
        hasher.update(Data("\n".utf8))
        count += 1
    }

    public func hexDigest() -> String { hasher.hexDigest() }
}

// MARK: Interfaces

/// Submitting and cancelling quotes and orders (market-maker nodes).
public protocol OrderEntry: Sendable {
    func replaceQuote(symbol: String, _ request: QuoteRequest) async throws(ClientError) -> Quote
    func cancelQuote(symbol: String, _ request: FencedRequest) async throws(ClientError) -> QuoteCancelResult
    func submitOrder(_ request: OrderRequest) async throws(ClientError) -> OrderAck
    func cancelOrder(orderId: String, _ request: FencedRequest) async throws(ClientError) -> OrderAck
    func armDeadman(_ request: DeadmanRequest) async throws(ClientError) -> DeadmanStatus
}

/// Querying reference prices.
public protocol ReferencePriceSource: Sendable {
    func prices() async throws(ClientError) -> [ReferencePrice]
    func price(symbol: String) async throws(ClientError) -> ReferencePrice
}

/// Consuming the fill log with a cursor.
public protocol FillLogSource: Sendable {
    func fills(after seq: Int64, limit: Int, waitMs: Int64) async throws(ClientError) -> FillPage
}

public struct ExchangeClient: OrderEntry, ReferencePriceSource, FillLogSource {
    public let endpoint: ServiceEndpoint
    public init(_ endpoint: ServiceEndpoint) { self.endpoint = endpoint }

    public func replaceQuote(symbol: String, _ request: QuoteRequest) async throws(ClientError) -> Quote {
        try await endpoint.call(.PUT, ExchangeRoutes.replaceQuote.path(["symbol": symbol]), body: request)
    }
    public func cancelQuote(symbol: String, _ request: FencedRequest) async throws(ClientError) -> QuoteCancelResult {
        try await endpoint.call(.DELETE, ExchangeRoutes.cancelQuote.path(["symbol": symbol]), body: request)
    }
    public func submitOrder(_ request: OrderRequest) async throws(ClientError) -> OrderAck {
        try await endpoint.call(.POST, ExchangeRoutes.submitOrder.path, body: request)
    }
    public func cancelOrder(orderId: String, _ request: FencedRequest) async throws(ClientError) -> OrderAck {
        try await endpoint.call(.DELETE, ExchangeRoutes.cancelOrder.path(["order_id": orderId]), body: request)
    }
    public func armDeadman(_ request: DeadmanRequest) async throws(ClientError) -> DeadmanStatus {
        try await endpoint.call(.POST, ExchangeRoutes.deadman.path, body: request)
    }
    public func prices() async throws(ClientError) -> [ReferencePrice] {
        try await endpoint.call(.GET, ExchangeRoutes.prices.path, as: PriceList.self).prices
    }
    public func price(symbol: String) async throws(ClientError) -> ReferencePrice {
        try await endpoint.call(.GET, ExchangeRoutes.price.path(["symbol": symbol]))
    }
    public func fills(after seq: Int64, limit: Int, waitMs: Int64) async throws(ClientError) -> FillPage {
        try await endpoint.call(
            .GET, ExchangeRoutes.fills.path, query: [("after", "\(seq)"), ("limit", "\(limit)"), ("wait_ms", "\(waitMs)")],
            timeoutMs: endpoint.timeoutMs + waitMs)
    }
    public func symbols() async throws(ClientError) -> [SymbolSpec] {
        try await endpoint.call(.GET, ExchangeRoutes.symbols.path, as: SymbolList.self).symbols
    }
    public func quotes() async throws(ClientError) -> [Quote] {
        try await endpoint.call(.GET, ExchangeRoutes.quotes.path, as: QuoteList.self).quotes
    }
    public func book(symbol: String) async throws(ClientError) -> BookDepth {
        try await endpoint.call(.GET, ExchangeRoutes.book.path(["symbol": symbol]))
    }
    public func stats() async throws(ClientError) -> ExchangeStats {
        try await endpoint.call(.GET, ExchangeRoutes.stats.path)
    }
}
