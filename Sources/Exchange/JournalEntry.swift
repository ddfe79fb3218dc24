import MMCore

/// One accepted, state-changing command, exactly as the journal stores it. Replaying the
/// entries in `seq` order through `ExchangeState.apply` rebuilds the books and the fill log
/// byte for byte, so an entry holds everything its effect depends on (never "now", never
/// a grant to re-verify: it was verified when it was accepted).
public struct JournalEntry: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case replaceQuote = "replace_quote"
        case cancelQuote = "cancel_quote"
        case submitOrder = "submit_order"
        case cancelOrder = "cancel_order"
        case external
        case deadmanExpired = "deadman_expired"
        /// A higher fencing token was seen for `symbol`: every resting market-maker order of
        /// an older token is cancelled before the command that carried it is applied.
        case supersede
        /// Several commands accepted together (`PUT /v1/quotes`), in `entries`, applied in
        /// order under this one record's seq and timestamp: a node's round of quote replaces
        /// costs one journal row, not one per symbol.
        case batch
    }

    public var kind: Kind
    public var symbol: String?
    public var node: String?
    public var token: Int64?
    public var side: Side?
    public var price: Ticks?
    public var qty: Lots?
    public var timeInForce: TimeInForce?
    public var clientOrderId: String?
    public var orderId: String?
    public var bidPrice: Ticks?
    public var bidQty: Lots?
    public var askPrice: Ticks?
    public var askQty: Lots?
    public var flowIndex: Int64?
    /// The sub-entries of a `batch` (never themselves batches), in apply order.
    public var entries: [JournalEntry]?

    public init(kind: Kind, symbol: String? = nil, node: String? = nil, token: Int64? = nil, side: Side? = nil, price: Ticks? = nil,
                qty: Lots? = nil, timeInForce: TimeInForce? = nil, clientOrderId: String? = nil, orderId: String? = nil,
                bidPrice: Ticks? = nil, bidQty: Lots? = nil, askPrice: Ticks? = nil, askQty: Lots? = nil, flowIndex: Int64? = nil, entries: [JournalEntry]? = nil) {
        self.kind = kind
        self.symbol = symbol
        self.node = node
        self.token = token
        self.side = side
        self.price = price
        self.qty = qty
        self.timeInForce = timeInForce
        self.clientOrderId = clientOrderId
        self.orderId = orderId
        self.bidPrice = bidPrice
        self.bidQty = bidQty
        self.askPrice = askPrice
        self.askQty = askQty
        self.flowIndex = flowIndex
        self.entries = entries
    }

    public static func replaceQuote(symbol: String, node: String, token: Int64, bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots) -> JournalEntry {
        JournalEntry(kind: .replaceQuote, symbol: symbol, node: node, token: token,
                     bidPrice: bidPrice, bidQty: bidPrice == nil ? nil : bidQty, askPrice: askPrice, askQty: askPrice == nil ? nil : askQty)
    }
    public static func cancelQuote(symbol: String, node: String, token: Int64) -> JournalEntry {
        JournalEntry(kind: .cancelQuote, symbol: symbol, node: node, token: token)
    }
    public static func submitOrder(_ request: OrderRequest) -> JournalEntry {
        JournalEntry(kind: .submitOrder, symbol: request.symbol, node: request.node, token: request.grant.fencingToken, side: request.side,
                     price: request.price, qty: request.qty, timeInForce: request.timeInForce, clientOrderId: request.clientOrderId)
    }
    public static func cancelOrder(orderId: String, symbol: String, node: String, token: Int64) -> JournalEntry {
        JournalEntry(kind: .cancelOrder, symbol: symbol, node: node, token: token, orderId: orderId)
    }
    public static func external(_ intent: ExternalOrderIntent) -> JournalEntry {
        JournalEntry(kind: .external, symbol: intent.symbol, side: intent.side, price: intent.price, qty: intent.qty, timeInForce: .ioc, flowIndex: intent.flowIndex)
    }
    public static func deadmanExpired(node: String) -> JournalEntry { JournalEntry(kind: .deadmanExpired, node: node) }
    public static func supersede(symbol: String, token: Int64) -> JournalEntry { JournalEntry(kind: .supersede, symbol: symbol, token: token) }
    public static func batch(_ entries: [JournalEntry]) -> JournalEntry { JournalEntry(kind: .batch, entries: entries) }
}

/// A journal row: gap-free `seq` from 1 and the time the command was accepted.
public struct JournalRecord: Sendable, Hashable {
    public var seq: Int64
    public var tsMs: EpochMs
    public var entry: JournalEntry

    public init(seq: Int64, tsMs: EpochMs, entry: JournalEntry) {
        self.seq = seq
        self.tsMs = tsMs
        self.entry = entry
    }
}

/// The independent check behind `stale_accepted`: fed every journaled record, it counts
/// fenced commands whose token is lower than one accepted earlier for the same symbol.
/// It shares no code with the admission check, so a bug there shows up here as a non-zero.
public struct FencingAudit: Sendable, Hashable, Codable {
    public private(set) var highest: [String: Int64] = [:]
    public private(set) var staleAccepted: Int64 = 0

    public init() {}

    public mutating func observe(_ entry: JournalEntry) {
        if entry.kind == .batch {
            // Each sub-entry is a command of its own for fencing purposes.
            for sub in entry.entries ?? [] where sub.kind != .batch { observe(sub) }
            return
        }
        guard let symbol = entry.symbol, let token = entry.token else { return }
        let seen = highest[symbol] ?? Int64.min
        if token < seen { staleAccepted += 1 }
        if token > seen { highest[symbol] = token }
    }
}

/// Every journaled command is encoded by the group committer, one after another while the next
/// batch waits, so `JSONEncoder`'s cost per record bounded the exchange's throughput. Written
/// by hand here with the same bytes (sorted snake_case keys, absent optionals omitted), which a
/// property test checks; a string needing escapes falls back to `JSONEncoder`.
extension JournalEntry: HotPathJSONEncodable {
    public func writeJSON(to writer: inout HotPathJSONWriter) -> Bool {
        writer.beginObject()
        writer.member("ask_price", askPrice)
        writer.member("ask_qty", askQty)
        writer.member("bid_price", bidPrice)
        writer.member("bid_qty", bidQty)
        guard writer.member("client_order_id", clientOrderId) else { return false }
        if let entries {
            // Sorted keys: "entries" falls between "client_order_id" and "flow_index".
            writer.key("entries")
            writer.beginArray()
            for sub in entries {
                writer.element()
                guard sub.writeJSON(to: &writer) else { return false }
            }
            writer.endArray()
        }
        writer.member("flow_index", flowIndex)
        guard writer.member("kind", kind.rawValue),
              writer.member("node", node),
              writer.member("order_id", orderId) else { return false }
        writer.member("price", price)
        writer.member("qty", qty)
        guard writer.member("side", side?.rawValue),
              writer.member("symbol", symbol),
              writer.member("time_in_force", timeInForce?.rawValue) else { return false }
        writer.member("token", token)
        writer.endObject()
        return true
    }
}
