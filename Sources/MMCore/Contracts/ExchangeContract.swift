import Crypto
import Foundation

// MARK: Exchange: reference prices, matching, quotes, fills. Only the exchange creates fills.

public enum ExchangeRoutes {
    public static let symbols = RouteSpec.read("/v1/symbols")
    public static let prices = RouteSpec.read("/v1/prices")
    public static let price = RouteSpec.read("/v1/prices/{symbol}")
    public static let quotes = RouteSpec.read("/v1/quotes")
    public static let replaceQuote = RouteSpec(.PUT, "/v1/quotes/{symbol}", roles: [.node])
    /// Batch replace (`QuoteBatchRequest`): one request and one journal record for a node's
    /// whole round of changed quotes, each item judged by the single route's rules.
    public static let replaceQuotes = RouteSpec(.PUT, "/v1/quotes", roles: [.node])
    public static let cancelQuote = RouteSpec(.DELETE, "/v1/quotes/{symbol}", roles: [.node])
    public static let submitOrder = RouteSpec(.POST, "/v1/orders", roles: [.node])
    public static let cancelOrder = RouteSpec(.DELETE, "/v1/orders/{order_id}", roles: [.node])
    public static let deadman = RouteSpec(.POST, "/v1/deadman", roles: [.node])
    public static let book = RouteSpec.read("/v1/book/{symbol}")
    /// `?after=SEQ&limit=N&wait_ms=W`: fills with seq > after, long-polling up to W ms.
    public static let fills = RouteSpec.read("/v1/fills")
    /// `?through=SEQ`: the fill-log chain head through fill SEQ (default: the published head).
    public static let fillDigest = RouteSpec.read("/v1/fills/digest")
    /// The exchange's own fold of its fill log per symbol (the last few positions each), so
    /// a checker compares the ledger's positions without reading every fill.
    public static let fillFold = RouteSpec.read("/v1/fills/fold")
    public static let stats = RouteSpec.read("/v1/stats")

    public static let all: [RouteSpec] = [symbols, prices, price, quotes, replaceQuote, replaceQuotes, cancelQuote, submitOrder, cancelOrder, deadman, book, fills, fillDigest, fillFold, stats]
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
    public static let unknownFill = "unknown_fill"              // 404
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

/// `PUT /v1/quotes`: replace several of one node's quotes at once. Every item is decided by
/// the rules of `PUT /v1/quotes/{symbol}` against the state the earlier items left, so one
/// stale grant refuses only its own symbol; all accepted items are one journal record.
public struct QuoteBatchRequest: Codable, Sendable, Hashable {
    /// One symbol's replace: `QuoteRequest` with the symbol instead of the node (the batch
    /// names the node once).
    public struct Item: Codable, Sendable, Hashable {
        public var symbol: String
        public var grant: AuthorityGrant
        public var bidPrice: Ticks?
        public var bidQty: Lots
        public var askPrice: Ticks?
        public var askQty: Lots

        public init(symbol: String, grant: AuthorityGrant, bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots) {
            self.symbol = symbol
            self.grant = grant
            self.bidPrice = bidPrice
            self.bidQty = bidQty
            self.askPrice = askPrice
            self.askQty = askQty
        }

        /// The single route's body for this item.
        public func request(node: String) -> QuoteRequest {
            QuoteRequest(node: node, grant: grant, bidPrice: bidPrice, bidQty: bidQty, askPrice: askPrice, askQty: askQty)
        }
    }

    /// More items than one node could hold symbols for in any configuration we run
    /// (1,000 symbols): a bigger batch is a client bug, and bounds the exchange's actor turn.
    public static let maxItems = 1_000

    public var node: String
    public var quotes: [Item]

    public init(node: String, quotes: [Item]) {
        self.node = node
        self.quotes = quotes
    }

    /// The checks on the batch as a whole (before any item is decided): 1…`maxItems` items,
    /// each symbol at most once. A failure names the offending item's index.
    public func validateShape() throws(APIError) {
        guard !quotes.isEmpty else { throw APIError.invalidField("quotes", "must hold at least one quote (got none)") }
        guard quotes.count <= Self.maxItems else {
            throw APIError.invalidField("quotes", "holds \(quotes.count) quotes; at most \(Self.maxItems) per request")
        }
        var seen: [String: Int] = [:]
        for (index, item) in quotes.enumerated() {
            if let first = seen.updateValue(index, forKey: item.symbol) {
                throw APIError.invalidField("quotes[\(index)].symbol", "'\(item.symbol)' is already quoted at quotes[\(first)]; each symbol at most once per batch")
            }
        }
    }
}

/// `PUT /v1/quotes` answer: one result per request item, in request order.
public struct QuoteBatchResult: Codable, Sendable, Hashable {
    public struct Item: Codable, Sendable, Hashable {
        public var symbol: String
        /// The HTTP status the single route would have answered for this item (200 or the
        /// error's), so a client handles a refused item exactly as a refused single request.
        public var status: Int
        /// The quote now resting (accepted items).
        public var quote: Quote?
        /// Why the item was refused (nothing of it changed).
        public var error: ErrorEnvelope.Body?

        public init(symbol: String, quote: Quote) {
            self.symbol = symbol
            self.status = 200
            self.quote = quote
            self.error = nil
        }

        public init(symbol: String, refusal: APIError) {
            self.symbol = symbol
            self.status = refusal.status
            self.quote = nil
            self.error = ErrorEnvelope(code: refusal.code, message: refusal.message, details: refusal.details).error
        }

        /// Field by field, as read off the wire.
        init(symbol: String, status: Int, quote: Quote?, error: ErrorEnvelope.Body?) {
            self.symbol = symbol
            self.status = status
            self.quote = quote
            self.error = error
        }

        /// The refusal as the single route's client would have thrown it.
        public var clientError: ClientError? {
            error.map { .api(status: status, ErrorEnvelope(code: $0.code, message: $0.message, details: $0.details)) }
        }
    }

    public var results: [Item]

    public init(results: [Item]) { self.results = results }
}

/// Every round of every node is answered with one of these (up to one quote per held
/// symbol), so it skips `JSONEncoder` like the single route's `Quote`. An error with
/// `details` (a dictionary: keys the writer cannot name statically) falls back.
extension QuoteBatchResult: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.key("results")
        writer.beginArray()
        for item in results {
            writer.element()
            writer.beginObject()
            if let error = item.error {
                guard error.details == nil else { return false }
                writer.key("error")
                writer.beginObject()
                writer.key("code")
                guard writer.string(error.code) else { return false }
                writer.key("message")
                guard writer.string(error.message) else { return false }
                writer.endObject()
            }
            if let quote = item.quote {
                writer.key("quote")
                guard quote.writeJSON(to: &writer) else { return false }
            }
            writer.key("status")
            writer.int(Int64(item.status))
            writer.key("symbol")
            guard writer.string(item.symbol) else { return false }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return true
    }
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

/// The fill-log chain head through one fill: comparing two logs' heads at the same seq
/// compares every fill up to it.
public struct FillLogHead: Codable, Sendable, Hashable {
    public var throughSeq: Int64
    /// `FillLogDigest` head through `through_seq` (64 hex digits).
    public var fillLogSha256: String

    public init(throughSeq: Int64, fillLogSha256: String) {
        self.throughSeq = throughSeq
        self.fillLogSha256 = fillLogSha256
    }
}

/// The fold (`PositionFold`) of a fill log per symbol, remembering the last `depth` positions
/// each symbol passed through. A ledger's position of a symbol names its last fill seq; the
/// fold's position with the same last fill seq is what it must equal. Pure: the exchange
/// feeds it every fill in seq order, and a snapshot carries it.
public struct FoldHistory: Codable, Sendable, Hashable {
    public static let depth = 32
    /// Oldest first, at most `depth` per symbol.
    public private(set) var recent: [String: [Position]]
    public private(set) var foldedThroughSeq: Int64

    public init() {
        recent = [:]
        foldedThroughSeq = 0
    }

    public mutating func apply(_ fill: Fill) {
        var history = recent[fill.symbol] ?? []
        let current = history.last ?? .flat(fill.symbol)
        history.append(PositionFold.apply(fill, to: current, version: fill.seq))
        if history.count > Self.depth { history.removeFirst(history.count - Self.depth) }
        recent[fill.symbol] = history
        foldedThroughSeq = max(foldedThroughSeq, fill.seq)
    }

}

/// `GET /v1/fills/fold`: the exchange's fold through its published head.
public struct FillFold: Codable, Sendable, Hashable {
    public var publishedSeq: Int64
    /// Per symbol, the last positions the fold passed through, oldest first.
    public var positions: [String: [Position]]

    public init(publishedSeq: Int64, positions: [String: [Position]]) {
        self.publishedSeq = publishedSeq
        self.positions = positions
    }

    /// The state with last fill `seq` (flat for 0 when the symbol's first fold state is in view).
    public func position(_ symbol: String, lastFillSeq seq: Int64) -> Position? {
        let history = positions[symbol] ?? []
        if seq == 0 { return history.isEmpty || history.first?.fillCount == 1 ? .flat(symbol) : nil }
        return history.last { $0.lastFillSeq == seq }
    }
}

public struct ExchangeStats: Codable, Sendable, Hashable {
    public var fillCount: Int64
    /// The fill-log chain head through fill `fill_count` (see `FillLogDigest`).
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

/// The byte-exact fill-log digest shared by the live exchange, the ledger, `mmd exchange
/// replay` and checkers: a hash chain, head(0) = 32 zero bytes and
/// head(n) = SHA-256(head(n-1) ‖ canonical JSON of fill n ‖ "\n").
///
/// A chain rather than one SHA-256 over the whole log because its state is the 32-byte head:
/// it can be stored beside each fill, saved in a snapshot and resumed, and two logs can be
/// compared at any seq in O(1) (the check compares the exchange's head at the ledger's
/// cursor with the ledger's own), which a running SHA-256 (unserialisable) cannot.
public struct FillLogDigest: Sendable, Hashable {
    public private(set) var head: [UInt8]
    public private(set) var count: Int64

    public static let emptyHead = [UInt8](repeating: 0, count: 32)

    public init() {
        head = Self.emptyHead
        count = 0
    }

    /// Resumes a chain from a stored head (hex, 64 characters) after `count` fills.
    public init?(headHex: String, count: Int64) {
        guard count >= 0, let bytes = [UInt8](lowercaseHex: headHex), bytes.count == 32 else { return nil }
        head = bytes
        self.count = count
    }

    /// The canonical bytes of `fill` (sorted keys, snake_case, no whitespace): what is hashed,
    /// and what the exchange stores as the fill's body.
    public static func canonical(_ fill: Fill) -> Data {
        // The hand-written writer gives exactly these bytes (InspectionJSONTests), or declines.
        if let bytes = fill.hotPathJSON() { return Data(bytes) }
        return (try? MMJSON.encode(fill)) ?? Data()
    }

    public mutating func append(_ fill: Fill) { append(canonical: Self.canonical(fill)) }

    public mutating func append(canonical: Data) {
        var hasher = SHA256()
        hasher.update(data: head)
        hasher.update(data: canonical)
        hasher.update(data: Self.newline)
        head = Array(hasher.finalize())
        count += 1
    }

    private static let newline = Data("\n".utf8)

    public func hexDigest() -> String { head.lowercaseHex }
}

// MARK: Interfaces

/// Submitting and cancelling quotes and orders (market-maker nodes).
public protocol OrderEntry: Sendable {
    func replaceQuote(symbol: String, _ request: QuoteRequest) async throws(ClientError) -> Quote
    /// One request for several symbols (`PUT /v1/quotes`); per-item refusals are in the result.
    func replaceQuotes(_ request: QuoteBatchRequest) async throws(ClientError) -> QuoteBatchResult
    func cancelQuote(symbol: String, _ request: FencedRequest) async throws(ClientError) -> QuoteCancelResult
    func submitOrder(_ request: OrderRequest) async throws(ClientError) -> OrderAck
    func cancelOrder(orderId: String, _ request: FencedRequest) async throws(ClientError) -> OrderAck
    func armDeadman(_ request: DeadmanRequest) async throws(ClientError) -> DeadmanStatus
}

/// Querying reference prices.
public protocol ReferencePriceSource: Sendable {
    func prices() async throws(ClientError) -> [ReferencePrice]
    /// Only these symbols' prices: what a node polls for the symbols assigned to it, so the
    /// poll costs its share of the symbols, not all of them.
    func prices(symbols: [String]) async throws(ClientError) -> [ReferencePrice]
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
    public func replaceQuotes(_ request: QuoteBatchRequest) async throws(ClientError) -> QuoteBatchResult {
        try await endpoint.call(.PUT, ExchangeRoutes.replaceQuotes.path, body: request)
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
    public func prices(symbols: [String]) async throws(ClientError) -> [ReferencePrice] {
        let list: PriceList = try await endpoint.call(.GET, ExchangeRoutes.prices.path, query: [("symbols", symbols.joined(separator: ","))])
        return list.prices
    }
    public func price(symbol: String) async throws(ClientError) -> ReferencePrice {
        try await endpoint.call(.GET, ExchangeRoutes.price.path(["symbol": symbol]))
    }
    public func fills(after seq: Int64, limit: Int, waitMs: Int64) async throws(ClientError) -> FillPage {
        try await endpoint.call(
            .GET, ExchangeRoutes.fills.path, query: [("after", "\(seq)"), ("limit", "\(limit)"), ("wait_ms", "\(waitMs)")],
            timeoutMs: endpoint.timeoutMs + waitMs)
    }
    /// The newest `count` published fills (1…1000), in one request.
    public func fills(tail count: Int) async throws(ClientError) -> FillPage {
        try await endpoint.call(.GET, ExchangeRoutes.fills.path, query: LogCursor.tail(count).query)
    }
    public func fillFold() async throws(ClientError) -> FillFold {
        try await endpoint.call(.GET, ExchangeRoutes.fillFold.path)
    }
    /// The chain head through fill `seq` (nil: the published head).
    public func fillDigest(through seq: Int64? = nil) async throws(ClientError) -> FillLogHead {
        try await endpoint.call(.GET, ExchangeRoutes.fillDigest.path, query: seq.map { [("through", "\($0)")] } ?? [])
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
