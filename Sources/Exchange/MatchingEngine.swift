import MMCore

/// Who owns an engine order: an interned market-maker node (≥ 0) or external flow.
public typealias OwnerIndex = Int32
public let externalOwner: OwnerIndex = -1

/// A resting order as the engine holds it. `qty` is what still rests.
public struct EngineOrder: Sendable, Hashable, Codable {
    public var id: Int64
    public var side: Side
    public var price: Ticks
    public var qty: Lots
    public var owner: OwnerIndex
    public var token: Int64

    public init(id: Int64, side: Side, price: Ticks, qty: Lots, owner: OwnerIndex, token: Int64) {
        self.id = id
        self.side = side
        self.price = price
        self.qty = qty
        self.owner = owner
        self.token = token
    }
}

/// One execution: a resting maker met an incoming taker at the maker's price.
public struct EngineFill: Sendable, Hashable {
    public var symbol: Int
    public var makerId: Int64
    public var takerId: Int64
    public var makerSide: Side
    public var makerOwner: OwnerIndex
    public var makerToken: Int64
    public var price: Ticks
    public var qty: Lots
    /// What the maker still has resting after this fill (0 = maker done).
    public var makerRemaining: Lots
}

public struct SubmitOutcome: Sendable, Hashable {
    public var filledQty: Lots
    /// Left resting on the book (GTC only).
    public var restingQty: Lots
    /// The unfilled remainder of an IOC order, cancelled at once.
    public var cancelledQty: Lots

    public init(filledQty: Lots, restingQty: Lots, cancelledQty: Lots) {
        self.filledQty = filledQty
        self.restingQty = restingQty
        self.cancelledQty = cancelledQty
    }
}

/// A price level: order ids in arrival order. `head` skips the filled front without
/// shifting the array on every fill; a cancelled order's id stays behind as a tombstone
/// (it is gone from the book's dictionary, so matching skips it) until the level is
/// compacted, which makes cancel O(1) instead of a scan of the level.
struct PriceLevel: Sendable, Hashable, Codable {
    var price: Ticks
    var ids: [Int64]
    var head: Int
    var qty: Lots
    /// Orders still resting here (ids past `head` minus tombstones).
    var live: Int

    var orderCount: Int { live }
}

/// One side of a book, levels sorted so that the best price is LAST (bids ascending, asks
/// descending): matching and cancelling at the touch are O(1) array-end operations.
struct BookSide: Sendable, Hashable, Codable {
    let isBid: Bool
    var levels: [PriceLevel] = []

    /// `price` sorts before `other` in this side's order (worse first, best last).
    @inline(__always) func before(_ price: Ticks, _ other: Ticks) -> Bool { isBid ? price < other : price > other }

    /// Index of the level at `price`, or where it would be inserted.
    func find(_ price: Ticks) -> (index: Int, found: Bool) {
        // Most activity is at or near the touch: check the end first.
        if let last = levels.last {
            if last.price == price { return (levels.count - 1, true) }
            if before(last.price, price) { return (levels.count, false) }
        }
        var low = 0
        var high = levels.count
        while low < high {
            let mid = (low + high) / 2
            if levels[mid].price == price { return (mid, true) }
            if before(levels[mid].price, price) { low = mid + 1 } else { high = mid }
        }
        return (low, false)
    }

    var best: Ticks? { levels.last?.price }
}

/// One symbol's central limit order book with price-time priority.
public struct OrderBook: Sendable, Hashable, Codable {
    var bids = BookSide(isBid: true)
    var asks = BookSide(isBid: false)
    /// Every resting order of this book by id.
    public private(set) var orders: [Int64: EngineOrder] = [:]

    public init() {}

    public var bestBid: Ticks? { bids.best }
    public var bestAsk: Ticks? { asks.best }

    /// True when an incoming order on `side` at `price` would trade against anything resting.
    public func wouldMatch(side: Side, price: Ticks) -> Bool {
        switch side {
        case .buy: if let ask = bestAsk { return ask <= price }
        case .sell: if let bid = bestBid { return bid >= price }
        }
        return false
    }

    /// Matches the incoming order, then rests the remainder (GTC) or cancels it (IOC).
    public mutating func submit(
        id: Int64, side: Side, price: Ticks, qty: Lots, timeInForce: TimeInForce, owner: OwnerIndex, token: Int64,
        symbol: Int, fills: inout [EngineFill]
    ) -> SubmitOutcome {
        precondition(qty > 0 && price > 0, "the exchange validates qty and price before they reach the engine")
        var remaining = qty
        if side == .buy {
            remaining = Self.match(against: &asks, orders: &orders, takerId: id, limit: price, qty: remaining, symbol: symbol, fills: &fills)
        } else {
            remaining = Self.match(against: &bids, orders: &orders, takerId: id, limit: price, qty: remaining, symbol: symbol, fills: &fills)
        }
        let filled = qty - remaining
        guard remaining > 0 else { return SubmitOutcome(filledQty: filled, restingQty: 0, cancelledQty: 0) }
        if timeInForce == .ioc { return SubmitOutcome(filledQty: filled, restingQty: 0, cancelledQty: remaining) }
        orders[id] = EngineOrder(id: id, side: side, price: price, qty: remaining, owner: owner, token: token)
        if side == .buy { Self.rest(id: id, price: price, qty: remaining, on: &bids) } else { Self.rest(id: id, price: price, qty: remaining, on: &asks) }
        return SubmitOutcome(filledQty: filled, restingQty: remaining, cancelledQty: 0)
    }

    private static func rest(id: Int64, price: Ticks, qty: Lots, on side: inout BookSide) {
        let (index, found) = side.find(price)
        if found {
            side.levels[index].ids.append(id)
            side.levels[index].qty += qty
            side.levels[index].live += 1
        } else {
            side.levels.insert(PriceLevel(price: price, ids: [id], head: 0, qty: qty, live: 1), at: index)
        }
    }

    private static func match(
        against book: inout BookSide, orders: inout [Int64: EngineOrder], takerId: Int64, limit: Ticks, qty: Lots,
        symbol: Int, fills: inout [EngineFill]
    ) -> Lots {
        var remaining = qty
        while remaining > 0, let last = book.levels.indices.last {
            let levelPrice = book.levels[last].price
            let crosses = book.isBid ? levelPrice >= limit : levelPrice <= limit
            guard crosses else { break }
            while remaining > 0, book.levels[last].head < book.levels[last].ids.count {
                let makerId = book.levels[last].ids[book.levels[last].head]
                guard var maker = orders[makerId] else {
                    // A cancelled order's tombstone: skip it.
                    book.levels[last].head += 1
                    continue
                }
                let traded = min(remaining, maker.qty)
                remaining -= traded
                maker.qty -= traded
                book.levels[last].qty -= traded
                fills.append(EngineFill(
                    symbol: symbol, makerId: makerId, takerId: takerId, makerSide: maker.side, makerOwner: maker.owner,
                    makerToken: maker.token, price: levelPrice, qty: traded, makerRemaining: maker.qty))
                if maker.qty == 0 {
                    orders.removeValue(forKey: makerId)
                    book.levels[last].head += 1
                    book.levels[last].live -= 1
                } else {
                    orders[makerId] = maker
                }
            }
            if book.levels[last].live == 0 {
                book.levels.removeLast()
            } else if book.levels[last].head > 32 && book.levels[last].head * 2 > book.levels[last].ids.count {
                book.levels[last].ids.removeFirst(book.levels[last].head)
                book.levels[last].head = 0
            }
        }
        return remaining
    }

    /// Removes a resting order; nil when it is not resting (unknown, filled or cancelled).
    @discardableResult
    public mutating func cancel(id: Int64) -> EngineOrder? {
        guard let order = orders.removeValue(forKey: id) else { return nil }
        if order.side == .buy { Self.unrest(order, from: &bids, orders: orders) } else { Self.unrest(order, from: &asks, orders: orders) }
        return order
    }

    private static func unrest(_ order: EngineOrder, from side: inout BookSide, orders: [Int64: EngineOrder]) {
        let (index, found) = side.find(order.price)
        guard found else { return }
        side.levels[index].qty -= order.qty
        side.levels[index].live -= 1
        if side.levels[index].live == 0 {
            side.levels.remove(at: index)
            return
        }
        // Tombstones more than half the level: compact (amortized O(1) per cancel).
        let level = side.levels[index]
        if level.ids.count - level.head > 32 && level.live * 2 < level.ids.count - level.head {
            side.levels[index].ids = level.ids[level.head...].filter { orders[$0] != nil }
            side.levels[index].head = 0
        }
    }

    /// Best-first aggregated levels.
    public func depth(levels limit: Int) -> (bids: [BookLevel], asks: [BookLevel]) {
        func levels(_ side: BookSide) -> [BookLevel] {
            side.levels.reversed().prefix(limit).map { BookLevel(price: $0.price, qty: $0.qty, orders: $0.orderCount) }
        }
        return (levels(bids), levels(asks))
    }

    /// Resting orders of one side in priority order (best price first, then arrival).
    public func restingOrders(_ side: Side) -> [EngineOrder] {
        let book = side == .buy ? bids : asks
        return book.levels.reversed().flatMap { level in level.ids[level.head...].compactMap { orders[$0] } }
    }
}

/// Every symbol's book, addressed by the symbol's index in the cluster config. Pure and
/// deterministic: no clock, no I/O; the same calls in the same order give the same fills.
public struct MatchingEngine: Sendable, Hashable, Codable {
    public private(set) var books: [OrderBook]

    public init(symbolCount: Int) {
        books = Array(repeating: OrderBook(), count: symbolCount)
    }

    public mutating func submit(
        symbol: Int, id: Int64, side: Side, price: Ticks, qty: Lots, timeInForce: TimeInForce, owner: OwnerIndex, token: Int64,
        fills: inout [EngineFill]
    ) -> SubmitOutcome {
        books[symbol].submit(id: id, side: side, price: price, qty: qty, timeInForce: timeInForce, owner: owner, token: token, symbol: symbol, fills: &fills)
    }

    @discardableResult
    public mutating func cancel(symbol: Int, id: Int64) -> EngineOrder? {
        books[symbol].cancel(id: id)
    }

    public func book(_ symbol: Int) -> OrderBook { books[symbol] }
}
