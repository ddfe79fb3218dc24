import Foundation
import MMCore

/// The market maker's quote on one symbol as the state machine tracks it.
struct QuoteState: Sendable, Hashable, Codable {
    var node: String
    var token: Int64
    var bidId: Int64?
    var askId: Int64?
    var updatedAtMs: EpochMs
}

/// A plain order's lifetime record: the live ack, the ack as first returned (what an
/// idempotent resubmission gets back) and what identifies a resubmission.
struct PlainOrderState: Sendable, Hashable, Codable {
    var symbol: Int
    var owner: OwnerIndex
    var token: Int64
    var ack: OrderAck
    var originalAck: OrderAck
    var timeInForce: TimeInForce
}

/// What `decideSubmitOrder` concluded.
public enum OrderDecision: Sendable, Equatable {
    /// A resubmission of an accepted client_order_id: answer with the original ack.
    case duplicate(OrderAck)
    case accept([JournalEntry])
}

/// The exchange as a pure, deterministic state machine.
///
/// `decide…` checks a request against the current state (validation, grant, fencing,
/// self-trade) and returns the journal entries that would carry it out, or the `APIError`
/// that rejects it; it never mutates. `apply` carries out one journaled entry; it never
/// fails, because replay must reproduce exactly what was accepted. Time comes in as
/// arguments; nothing here reads a clock or touches a disk.
public struct ExchangeState: Sendable {
    public let symbols: [SymbolSpec]
    public let maxOrderQty: Lots
    public let maxPriceTicks: Ticks
    let symbolIndex: [String: Int]

    public private(set) var engine: MatchingEngine
    private(set) var nodes: [String] = []
    private var nodeIndex: [String: OwnerIndex] = [:]
    private(set) var quotes: [QuoteState?]
    public private(set) var highestTokens: [Int64]
    private(set) var plainOrders: [Int64: PlainOrderState] = [:]
    private var clientOrders: [String: Int64] = [:]
    /// Plain order ids in submission order (ids only grow), for evicting the oldest finished
    /// records: `plainOrderQueue[plainOrderQueueStart...]` is live, the prefix already evicted.
    private var plainOrderQueue: [Int64] = []
    private var plainOrderQueueStart = 0

    /// How many plain orders' records (`POST /v1/orders`: ack, client_order_id) are kept. Past
    /// it the oldest finished ones go, so memory does not grow with history: resubmitting an
    /// evicted client_order_id is a new order, and its GET answers 404. A resting order is
    /// never evicted (fills and cancels still need it). Part of replay: same journal, same
    /// evictions.
    public static let retainedPlainOrders = 100_000
    /// Fills made since the last `takeNewFills()`. The exchange core takes them after every
    /// command (to chain, store and publish them), so this never holds history.
    public private(set) var newFills: [Fill] = []
    /// Fills ever made: the seq of the next one is `fillCount + 1`.
    public private(set) var fillCount: Int64 = 0
    /// Sequence number of the last applied journal entry.
    public private(set) var journalSeq: Int64 = 0
    /// Orders ever accepted into the engine (quote sides, plain and external orders).
    public private(set) var orderCount: Int64 = 0
    /// Highest external-flow index applied (-1: none), so a restart resumes the schedule.
    public private(set) var lastFlowIndex: Int64 = -1
    private var nextOrderId: Int64 = 1
    private var scratchFills: [EngineFill] = []

    public init(symbols: [SymbolSpec], maxOrderQty: Lots, maxPriceTicks: Ticks) {
        self.symbols = symbols
        self.maxOrderQty = maxOrderQty
        self.maxPriceTicks = maxPriceTicks
        self.symbolIndex = Dictionary(uniqueKeysWithValues: symbols.enumerated().map { ($1.symbol, $0) })
        self.engine = MatchingEngine(symbolCount: symbols.count)
        self.quotes = Array(repeating: nil, count: symbols.count)
        self.highestTokens = Array(repeating: 0, count: symbols.count)
    }

    public init(config: ClusterConfig) {
        self.init(symbols: config.symbols, maxOrderQty: config.exchange.maxOrderQty, maxPriceTicks: config.exchange.maxPriceTicks)
    }

    /// Hands over the fills made since the last call, in seq order.
    public mutating func takeNewFills() -> [Fill] {
        defer { newFills.removeAll(keepingCapacity: true) }
        return newFills
    }

    // MARK: - Snapshots

    /// Everything `apply` has built up, for a snapshot. The configuration-derived parts
    /// (symbols, limits) are not in it: a snapshot is restored onto the same configuration,
    /// which `ExchangeSnapshot` checks through its fingerprint.
    public struct Persisted: Codable, Sendable, Hashable {
        var engine: MatchingEngine
        var nodes: [String]
        var quotes: [QuoteState?]
        var highestTokens: [Int64]
        var plainOrders: [Int64: PlainOrderState]
        var clientOrders: [String: Int64]
        var plainOrderQueue: [Int64]
        var fillCount: Int64
        var journalSeq: Int64
        var orderCount: Int64
        var lastFlowIndex: Int64
        var nextOrderId: Int64
    }

    /// The state as a snapshot holds it. Call between commands (no untaken fills).
    public var persisted: Persisted {
        Persisted(engine: engine, nodes: nodes, quotes: quotes, highestTokens: highestTokens, plainOrders: plainOrders, clientOrders: clientOrders,
                  plainOrderQueue: Array(plainOrderQueue[plainOrderQueueStart...]), fillCount: fillCount, journalSeq: journalSeq, orderCount: orderCount, lastFlowIndex: lastFlowIndex, nextOrderId: nextOrderId)
    }

    /// Restores a snapshot's state onto this configuration. Throws when its shape does not
    /// fit (another symbol count): the caller then falls back to a replay.
    public init(config: ClusterConfig, restoring persisted: Persisted) throws(SnapshotError) {
        self.init(config: config)
        let count = symbols.count
        guard persisted.engine.books.count == count, persisted.quotes.count == count, persisted.highestTokens.count == count else {
            throw .mismatch("the snapshot has \(persisted.engine.books.count) books, the configuration \(count) symbols")
        }
        engine = persisted.engine
        nodes = persisted.nodes
        nodeIndex = Dictionary(uniqueKeysWithValues: persisted.nodes.enumerated().map { ($1, OwnerIndex($0)) })
        quotes = persisted.quotes
        highestTokens = persisted.highestTokens
        plainOrders = persisted.plainOrders
        clientOrders = persisted.clientOrders
        plainOrderQueue = persisted.plainOrderQueue
        fillCount = persisted.fillCount
        journalSeq = persisted.journalSeq
        orderCount = persisted.orderCount
        lastFlowIndex = persisted.lastFlowIndex
        nextOrderId = persisted.nextOrderId
    }

    // MARK: - Reading

    public func index(of symbol: String) -> Int? { symbolIndex[symbol] }

    public func quote(_ symbol: String) -> Quote? {
        guard let index = symbolIndex[symbol], let state = quotes[index] else { return nil }
        let book = engine.books[index]
        let bid = state.bidId.flatMap { book.orders[$0] }
        let ask = state.askId.flatMap { book.orders[$0] }
        return Quote(symbol: symbol, node: state.node, fencingToken: state.token, bidPrice: bid?.price, bidQty: bid?.qty ?? 0,
                     askPrice: ask?.price, askQty: ask?.qty ?? 0, updatedAtMs: state.updatedAtMs)
    }

    public var allQuotes: [Quote] { symbols.compactMap { quote($0.symbol) } }

    /// The ack a node's order was accepted with, looked up by its client_order_id.
    public func originalAck(node: String, clientOrderId: String) -> OrderAck? {
        clientOrders[Self.clientKey(node, clientOrderId)].flatMap { plainOrders[$0]?.originalAck }
    }

    public func orderAck(_ orderId: String) -> OrderAck? { Self.parsePlainOrderId(orderId).flatMap { plainOrders[$0]?.ack } }

    public func depth(_ symbol: String, levels: Int) -> BookDepth? {
        guard let index = symbolIndex[symbol] else { return nil }
        let (bids, asks) = engine.books[index].depth(levels: levels)
        return BookDepth(symbol: symbol, bids: bids, asks: asks)
    }

    public func highestToken(_ symbol: String) -> Int64? { symbolIndex[symbol].map { highestTokens[$0] } }

    /// Nodes that own at least one resting order.
    public var nodesWithRestingOrders: Set<String> {
        var owners = Set<String>()
        for book in engine.books {
            for order in book.orders.values where order.owner >= 0 { owners.insert(nodes[Int(order.owner)]) }
        }
        return owners
    }

    public func hasRestingOrders(node: String) -> Bool {
        guard let owner = nodeIndex[node] else { return false }
        return engine.books.contains { $0.orders.values.contains { $0.owner == owner } }
    }

    // MARK: - Deciding (pure checks, no mutation)

    private func knownSymbol(_ symbol: String) throws(APIError) -> Int {
        guard let index = symbolIndex[symbol] else { throw APIError.unknownSymbol(symbol) }
        return index
    }

    private func checkNode(_ node: String) throws(APIError) {
        guard !node.isEmpty, node.count <= 64, !node.contains("|") else {
            throw APIError.invalidField("node", "must be the node id the grant was issued to (1–64 characters, no '|')")
        }
    }

    private func checkPrice(_ price: Ticks, field: String) throws(APIError) {
        guard price > 0 else { throw APIError.invalidField(field, "must be > 0 ticks (got \(price))") }
        guard price <= maxPriceTicks else {
            throw APIError(status: 400, code: ExchangeErrorCode.absurdSize,
                           message: "'\(field)' \(price) exceeds exchange.max_price_ticks (\(maxPriceTicks))", details: ["field": field])
        }
    }

    private func checkQty(_ qty: Lots, field: String) throws(APIError) {
        guard qty > 0 else { throw APIError.invalidField(field, "must be > 0 lots (got \(qty))") }
        guard qty <= maxOrderQty else {
            throw APIError(status: 400, code: ExchangeErrorCode.absurdSize,
                           message: "'\(field)' \(qty) exceeds exchange.max_order_qty (\(maxOrderQty))", details: ["field": field])
        }
    }

    /// Grant and fencing check. Returns the supersede entry to journal first when the token
    /// is higher than any accepted for the symbol.
    func checkAuthority(symbol: Int, node: String, grant: AuthorityGrant, signer: GrantSigner, nowMs: EpochMs) throws(APIError) -> [JournalEntry] {
        let name = symbols[symbol].symbol
        switch signer.verify(grant, node: node, symbol: name, nowMs: nowMs) {
        case .invalid(let why):
            throw APIError(status: 403, code: ExchangeErrorCode.invalidGrant,
                           message: "\(why): only the coordinator's grant for this node and symbol is accepted", details: ["symbol": name, "node": node])
        case .expired:
            throw APIError(status: 409, code: ExchangeErrorCode.grantExpired,
                           message: "grant for \(name) expired at \(grant.expiresAtMs) (exchange time \(nowMs)): renew it with the coordinator",
                           details: ["symbol": name, "expires_at_ms": "\(grant.expiresAtMs)"])
        case .valid:
            break
        }
        let highest = highestTokens[symbol]
        if grant.fencingToken < highest {
            throw APIError(status: 409, code: ExchangeErrorCode.staleFencingToken,
                           message: "fencing token \(grant.fencingToken) is older than \(highest), already accepted for \(name): another grant superseded yours",
                           details: ["symbol": name, "token": "\(grant.fencingToken)", "highest_token": "\(highest)"])
        }
        return grant.fencingToken > highest ? [.supersede(symbol: name, token: grant.fencingToken)] : []
    }

    private func selfTradeError(_ name: String, _ what: String) -> APIError {
        APIError(status: 409, code: ExchangeErrorCode.wouldSelfTrade,
                 message: "\(what) would trade against the market maker's own resting order on \(name); cancel or reprice it first",
                 details: ["symbol": name])
    }

    public func decideReplaceQuote(symbol name: String, _ request: QuoteRequest, signer: GrantSigner, nowMs: EpochMs) throws(APIError) -> [JournalEntry] {
        let symbol = try knownSymbol(name)
        try checkNode(request.node)
        if let bid = request.bidPrice {
            try checkPrice(bid, field: "bid_price")
            try checkQty(request.bidQty, field: "bid_qty")
        } else if request.bidQty < 0 {
            throw APIError.invalidField("bid_qty", "must not be negative")
        }
        if let ask = request.askPrice {
            try checkPrice(ask, field: "ask_price")
            try checkQty(request.askQty, field: "ask_qty")
        } else if request.askQty < 0 {
            throw APIError.invalidField("ask_qty", "must not be negative")
        }
        if let bid = request.bidPrice, let ask = request.askPrice, bid >= ask {
            throw APIError(status: 400, code: ExchangeErrorCode.crossedQuote,
                           message: "bid \(bid) must be below ask \(ask) (a \(bid == ask ? "locked" : "crossed") quote would trade with itself)",
                           details: ["bid_price": "\(bid)", "ask_price": "\(ask)"])
        }
        let supersede = try checkAuthority(symbol: symbol, node: request.node, grant: request.grant, signer: signer, nowMs: nowMs)
        if supersede.isEmpty {
            // Only the plain orders can be crossed: the old quote is replaced, not kept.
            let book = engine.books[symbol]
            for order in book.orders.values where plainOrders[order.id] != nil && order.owner >= 0 {
                if order.side == .sell, let bid = request.bidPrice, bid >= order.price { throw selfTradeError(name, "bid \(bid)") }
                if order.side == .buy, let ask = request.askPrice, ask <= order.price { throw selfTradeError(name, "ask \(ask)") }
            }
        }
        return supersede + [.replaceQuote(symbol: name, node: request.node, token: request.grant.fencingToken,
                                          bidPrice: request.bidPrice, bidQty: request.bidQty, askPrice: request.askPrice, askQty: request.askQty)]
    }

    /// Entries to journal and whether a quote was resting (the response's `cancelled`).
    public func decideCancelQuote(symbol name: String, _ request: FencedRequest, signer: GrantSigner, nowMs: EpochMs) throws(APIError) -> (entries: [JournalEntry], cancelled: Bool) {
        let symbol = try knownSymbol(name)
        try checkNode(request.node)
        let supersede = try checkAuthority(symbol: symbol, node: request.node, grant: request.grant, signer: signer, nowMs: nowMs)
        guard let quote = quotes[symbol] else { return (supersede, false) }
        // A higher token cancels the old quote by superseding it; the cancel itself is then a no-op.
        if !supersede.isEmpty && quote.token < request.grant.fencingToken { return (supersede, true) }
        return (supersede + [.cancelQuote(symbol: name, node: request.node, token: request.grant.fencingToken)], true)
    }

    public func decideSubmitOrder(_ request: OrderRequest, signer: GrantSigner, nowMs: EpochMs) throws(APIError) -> OrderDecision {
        let symbol = try knownSymbol(request.symbol)
        try checkNode(request.node)
        guard !request.clientOrderId.isEmpty, request.clientOrderId.count <= 64 else {
            throw APIError.invalidField("client_order_id", "must be 1–64 characters, unique per node")
        }
        try checkPrice(request.price, field: "price")
        try checkQty(request.qty, field: "qty")
        let name = request.symbol
        switch signer.verify(request.grant, node: request.node, symbol: name, nowMs: nowMs) {
        case .valid, .expired:
            // An authentic resubmission changes nothing, so it is answered even if the grant
            // has moved on since; a forged one is rejected below before anything is revealed.
            if let existing = clientOrders[Self.clientKey(request.node, request.clientOrderId)], let state = plainOrders[existing] {
                let original = state.originalAck
                guard original.symbol == name, original.side == request.side, original.price == request.price,
                      original.qty == request.qty, state.timeInForce == request.timeInForce else {
                    throw APIError(status: 409, code: ExchangeErrorCode.clientOrderIdReused,
                                   message: "client_order_id '\(request.clientOrderId)' was already used for a different order (\(original.orderId)); use a new id",
                                   details: ["order_id": original.orderId])
                }
                return .duplicate(original)
            }
        case .invalid:
            break
        }
        let supersede = try checkAuthority(symbol: symbol, node: request.node, grant: request.grant, signer: signer, nowMs: nowMs)
        if supersede.isEmpty && engine.books[symbol].wouldMatch(side: request.side, price: request.price) {
            throw selfTradeError(name, "\(request.side.rawValue) order at \(request.price)")
        }
        return .accept(supersede + [.submitOrder(request)])
    }

    public func decideCancelOrder(orderId: String, _ request: FencedRequest, signer: GrantSigner, nowMs: EpochMs) throws(APIError) -> [JournalEntry] {
        guard let id = Self.parsePlainOrderId(orderId), let state = plainOrders[id] else {
            throw APIError(status: 404, code: ExchangeErrorCode.unknownOrder, message: "no order '\(orderId)' (order ids look like O123)", details: ["order_id": orderId])
        }
        try checkNode(request.node)
        let name = symbols[state.symbol].symbol
        let supersede = try checkAuthority(symbol: state.symbol, node: request.node, grant: request.grant, signer: signer, nowMs: nowMs)
        guard state.ack.status == .resting else {
            throw APIError(status: 409, code: ExchangeErrorCode.orderNotOpen,
                           message: "order \(orderId) is \(state.ack.status.rawValue); only resting orders can be cancelled",
                           details: ["order_id": orderId, "status": state.ack.status.rawValue])
        }
        if !supersede.isEmpty && state.token < request.grant.fencingToken { return supersede }
        return supersede + [.cancelOrder(orderId: orderId, symbol: name, node: request.node, token: request.grant.fencingToken)]
    }

    /// An external order is journaled only when it trades: one that cannot match changes nothing.
    public func decideExternal(_ intent: ExternalOrderIntent) -> [JournalEntry] {
        guard let symbol = symbolIndex[intent.symbol], intent.qty > 0, intent.price > 0,
              engine.books[symbol].wouldMatch(side: intent.side, price: intent.price) else { return [] }
        return [.external(intent)]
    }

    public func decideDeadmanExpiry(node: String) -> [JournalEntry] {
        hasRestingOrders(node: node) ? [.deadmanExpired(node: node)] : []
    }

    // MARK: - Applying (total: replay must reproduce what was accepted)

    public mutating func apply(_ entry: JournalEntry, tsMs: EpochMs) {
        journalSeq += 1
        applyEffect(entry, tsMs: tsMs)
    }

    /// Decides the items of a quote batch one after another, each against the state the
    /// earlier accepted items left (applied as it goes), by exactly the single route's rules
    /// (`decideReplaceQuote`). Returns the one `batch` entry holding every accepted item's
    /// entries in order (nil when none was accepted: then nothing changed) and, per item, the
    /// refusal or nil.
    ///
    /// The one place that decides and applies in one step: deciding every item against the
    /// state before the batch would be wrong as soon as two items interact, and deciding
    /// against a scratch copy would apply everything twice. The effect is exactly
    /// `apply(batchEntry)` (same sub-entries, same order, same timestamp, one seq), which the
    /// replay property test checks.
    public mutating func acceptReplaceQuotes(
        node: String, _ items: [QuoteBatchRequest.Item], signer: GrantSigner, nowMs: EpochMs
    ) -> (entry: JournalEntry?, refusals: [APIError?]) {
        var accepted: [JournalEntry] = []
        var refusals: [APIError?] = []
        refusals.reserveCapacity(items.count)
        for item in items {
            do {
                let entries = try decideReplaceQuote(symbol: item.symbol, item.request(node: node), signer: signer, nowMs: nowMs)
                for entry in entries { applyEffect(entry, tsMs: nowMs) }
                accepted += entries
                refusals.append(nil)
            } catch {
                refusals.append(error)
            }
        }
        guard !accepted.isEmpty else { return (nil, refusals) }
        journalSeq += 1
        return (.batch(accepted), refusals)
    }

    /// One entry's effect, without advancing `journalSeq` (a batch's sub-entries share its seq).
    private mutating func applyEffect(_ entry: JournalEntry, tsMs: EpochMs) {
        switch entry.kind {
        case .batch:
            // Nested batches are never written; skipping them keeps apply total.
            for sub in entry.entries ?? [] where sub.kind != .batch { applyEffect(sub, tsMs: tsMs) }
        case .supersede:
            guard let symbol = entry.symbol.flatMap({ symbolIndex[$0] }), let token = entry.token else { return }
            supersede(symbol: symbol, token: token, tsMs: tsMs)
        case .replaceQuote:
            guard let symbol = entry.symbol.flatMap({ symbolIndex[$0] }), let node = entry.node, let token = entry.token else { return }
            supersede(symbol: symbol, token: token, tsMs: tsMs)
            cancelQuoteSides(symbol: symbol)
            let owner = intern(node)
            var state = QuoteState(node: node, token: token, bidId: nil, askId: nil, updatedAtMs: tsMs)
            quotes[symbol] = state
            if let price = entry.bidPrice, let qty = entry.bidQty, qty > 0 {
                let id = takeOrderId()
                let outcome = submit(symbol: symbol, id: id, side: .buy, price: price, qty: qty, tif: .gtc, owner: owner, token: token, takerKind: "Q", tsMs: tsMs)
                if outcome.restingQty > 0 { state.bidId = id }
            }
            if let price = entry.askPrice, let qty = entry.askQty, qty > 0 {
                let id = takeOrderId()
                let outcome = submit(symbol: symbol, id: id, side: .sell, price: price, qty: qty, tif: .gtc, owner: owner, token: token, takerKind: "Q", tsMs: tsMs)
                if outcome.restingQty > 0 { state.askId = id }
            }
            quotes[symbol] = state
        case .cancelQuote:
            guard let symbol = entry.symbol.flatMap({ symbolIndex[$0] }), let token = entry.token else { return }
            supersede(symbol: symbol, token: token, tsMs: tsMs)
            cancelQuoteSides(symbol: symbol)
            quotes[symbol] = nil
        case .submitOrder:
            guard let symbol = entry.symbol.flatMap({ symbolIndex[$0] }), let node = entry.node, let token = entry.token,
                  let side = entry.side, let price = entry.price, let qty = entry.qty, let clientOrderId = entry.clientOrderId else { return }
            supersede(symbol: symbol, token: token, tsMs: tsMs)
            let owner = intern(node)
            let id = takeOrderId()
            let tif = entry.timeInForce ?? .gtc
            let orderId = "O\(id)"
            var ack = OrderAck(orderId: orderId, clientOrderId: clientOrderId, symbol: symbols[symbol].symbol, side: side, price: price, qty: qty,
                               filledQty: 0, status: .resting, fillIds: [], acceptedAtMs: tsMs)
            plainOrders[id] = PlainOrderState(symbol: symbol, owner: owner, token: token, ack: ack, originalAck: ack, timeInForce: tif)
            clientOrders[Self.clientKey(node, clientOrderId)] = id
            let firstFill = newFills.count
            let outcome = submit(symbol: symbol, id: id, side: side, price: price, qty: qty, tif: tif, owner: owner, token: token, takerKind: "O", tsMs: tsMs)
            ack.filledQty = outcome.filledQty
            ack.fillIds = newFills[firstFill...].map(\.fillId)
            ack.status = outcome.restingQty > 0 ? .resting
                : outcome.filledQty == qty ? .filled
                : outcome.filledQty > 0 ? .partiallyFilledCancelled : .cancelled
            plainOrders[id]?.ack = ack
            plainOrders[id]?.originalAck = ack
            plainOrderQueue.append(id)
            evictFinishedPlainOrders(beyond: Self.retainedPlainOrders)
        case .cancelOrder:
            guard let symbol = entry.symbol.flatMap({ symbolIndex[$0] }), let token = entry.token,
                  let id = entry.orderId.flatMap(Self.parsePlainOrderId) else { return }
            supersede(symbol: symbol, token: token, tsMs: tsMs)
            if engine.cancel(symbol: symbol, id: id) != nil { markPlainCancelled(id) }
        case .external:
            guard let symbol = entry.symbol.flatMap({ symbolIndex[$0] }), let side = entry.side, let price = entry.price,
                  let qty = entry.qty, qty > 0, price > 0 else { return }
            let id = takeOrderId()
            _ = submit(symbol: symbol, id: id, side: side, price: price, qty: qty, tif: .ioc, owner: externalOwner, token: 0, takerKind: "X", tsMs: tsMs)
            if let flowIndex = entry.flowIndex { lastFlowIndex = max(lastFlowIndex, flowIndex) }
        case .deadmanExpired:
            guard let node = entry.node, let owner = nodeIndex[node] else { return }
            for symbol in symbols.indices {
                cancelOrders(symbol: symbol) { $0.owner == owner }
                if quotes[symbol]?.node == node { quotes[symbol] = nil }
            }
        }
    }

    // MARK: - Internals

    private mutating func takeOrderId() -> Int64 {
        defer { nextOrderId += 1 }
        orderCount += 1
        return nextOrderId
    }

    private mutating func intern(_ node: String) -> OwnerIndex {
        if let index = nodeIndex[node] { return index }
        let index = OwnerIndex(nodes.count)
        nodes.append(node)
        nodeIndex[node] = index
        return index
    }

    /// A higher token retires every resting market-maker order of older tokens.
    private mutating func supersede(symbol: Int, token: Int64, tsMs: EpochMs) {
        guard token > highestTokens[symbol] else { return }
        highestTokens[symbol] = token
        cancelOrders(symbol: symbol) { $0.owner >= 0 && $0.token < token }
        if let quote = quotes[symbol], quote.token < token { quotes[symbol] = nil }
    }

    private mutating func cancelQuoteSides(symbol: Int) {
        guard let quote = quotes[symbol] else { return }
        if let id = quote.bidId { engine.cancel(symbol: symbol, id: id) }
        if let id = quote.askId { engine.cancel(symbol: symbol, id: id) }
        quotes[symbol]?.bidId = nil
        quotes[symbol]?.askId = nil
    }

    private mutating func cancelOrders(symbol: Int, where predicate: (EngineOrder) -> Bool) {
        // Sorted so the order of cancellation (and so of everything after) is deterministic.
        let ids = engine.books[symbol].orders.values.filter(predicate).map(\.id).sorted()
        for id in ids {
            engine.cancel(symbol: symbol, id: id)
            markPlainCancelled(id)
            if quotes[symbol]?.bidId == id { quotes[symbol]?.bidId = nil }
            if quotes[symbol]?.askId == id { quotes[symbol]?.askId = nil }
        }
    }

    /// Drops the oldest finished plain orders' records while more than `limit` are kept.
    /// Resting ones are skipped (kept in the queue, in order) and looked at again next time.
    mutating func evictFinishedPlainOrders(beyond limit: Int) {
        guard plainOrders.count > limit else { return }
        var kept: [Int64] = []
        var index = plainOrderQueueStart
        while plainOrders.count > limit, index < plainOrderQueue.count {
            let id = plainOrderQueue[index]
            index += 1
            guard let state = plainOrders[id] else { continue }
            if state.ack.status == .resting { kept.append(id); continue }
            plainOrders[id] = nil
            clientOrders[Self.clientKey(nodes[Int(state.owner)], state.ack.clientOrderId)] = nil
        }
        // The skipped resting ids go back in front of the unvisited rest, order kept.
        plainOrderQueueStart = index - kept.count
        for (offset, id) in kept.enumerated() { plainOrderQueue[plainOrderQueueStart + offset] = id }
        // Compact the evicted prefix once it outweighs the live part.
        if plainOrderQueueStart > 1_024, plainOrderQueueStart * 2 > plainOrderQueue.count {
            plainOrderQueue.removeFirst(plainOrderQueueStart)
            plainOrderQueueStart = 0
        }
    }

    private mutating func markPlainCancelled(_ id: Int64) {
        guard var state = plainOrders[id], state.ack.status == .resting else { return }
        state.ack.status = state.ack.filledQty > 0 ? .partiallyFilledCancelled : .cancelled
        plainOrders[id] = state
    }

    private mutating func submit(
        symbol: Int, id: Int64, side: Side, price: Ticks, qty: Lots, tif: TimeInForce, owner: OwnerIndex, token: Int64,
        takerKind: String, tsMs: EpochMs
    ) -> SubmitOutcome {
        scratchFills.removeAll(keepingCapacity: true)
        let outcome = engine.submit(symbol: symbol, id: id, side: side, price: price, qty: qty, timeInForce: tif, owner: owner, token: token, fills: &scratchFills)
        for engineFill in scratchFills {
            record(engineFill, takerId: "\(takerKind)\(id)", tsMs: tsMs)
        }
        return outcome
    }

    private mutating func record(_ engineFill: EngineFill, takerId: String, tsMs: EpochMs) {
        fillCount += 1
        let seq = fillCount
        let makerIsPlain = plainOrders[engineFill.makerId] != nil
        let fill = Fill(
            fillId: "F\(seq)", seq: seq, symbol: symbols[engineFill.symbol].symbol, side: engineFill.makerSide, price: engineFill.price,
            qty: engineFill.qty, makerOrderId: "\(makerIsPlain ? "O" : "Q")\(engineFill.makerId)", takerOrderId: takerId,
            node: engineFill.makerOwner >= 0 ? nodes[Int(engineFill.makerOwner)] : "external", fencingToken: engineFill.makerToken, tsMs: tsMs)
        newFills.append(fill)
        if makerIsPlain {
            plainOrders[engineFill.makerId]?.ack.filledQty += engineFill.qty
            plainOrders[engineFill.makerId]?.ack.fillIds.append(fill.fillId)
            if engineFill.makerRemaining == 0 { plainOrders[engineFill.makerId]?.ack.status = .filled }
        } else if var quote = quotes[engineFill.symbol] {
            quote.updatedAtMs = tsMs
            if engineFill.makerRemaining == 0 {
                if quote.bidId == engineFill.makerId { quote.bidId = nil }
                if quote.askId == engineFill.makerId { quote.askId = nil }
            }
            quotes[engineFill.symbol] = quote
        }
    }

    static func clientKey(_ node: String, _ clientOrderId: String) -> String { "\(node)|\(clientOrderId)" }

    static func parsePlainOrderId(_ orderId: String) -> Int64? {
        guard orderId.first == "O", let id = Int64(orderId.dropFirst()), id > 0 else { return nil }
        return id
    }
}
