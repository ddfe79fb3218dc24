import MMCore

/// One external (non-market-maker) order the flow generator wants to send. External
/// orders are IOC takers: they never rest, so every fill involves exactly one
/// market-maker order.
public struct ExternalOrderIntent: Sendable, Hashable {
    public var symbol: String
    public var side: Side
    public var price: Ticks
    public var qty: Lots
    public var flowIndex: Int64
    /// True when the generator priced it to cross the market maker's quote.
    public var aggressive: Bool

    public init(symbol: String, side: Side, price: Ticks, qty: Lots, flowIndex: Int64, aggressive: Bool) {
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.flowIndex = flowIndex
        self.aggressive = aggressive
    }
}

/// Deterministic external order flow: the order for (seed, symbol, flow index) is a pure
/// function of those and of the book it meets (reference price, market maker's best bid
/// and ask). `cross_pct` percent are priced at or through the market maker's opposite
/// side; the rest are priced strictly behind it, around the reference price, and so
/// cannot trade.
public struct ExternalFlowGenerator: Sendable {
    public let seed: Int64
    public let crossPct: Int64
    public let maxQty: Lots
    public let maxPriceTicks: Ticks

    public init(seed: Int64, crossPct: Int64, maxQty: Lots, maxPriceTicks: Ticks) {
        self.seed = seed
        self.crossPct = min(max(crossPct, 0), 100)
        self.maxQty = max(maxQty, 1)
        self.maxPriceTicks = maxPriceTicks
    }

    public init(config: ClusterConfig) {
        self.init(seed: config.seed, crossPct: config.flow.crossPct, maxQty: config.flow.maxQty, maxPriceTicks: config.exchange.maxPriceTicks)
    }

    public func order(symbol: String, flowIndex: Int64, referencePrice: Ticks, bestBid: Ticks?, bestAsk: Ticks?) -> ExternalOrderIntent {
        var random = SplitMix64.stream(seed: seed, key: stableSymbolKey(symbol), index: flowIndex, salt: 0x464C_4F57_5F47_454E) // "FLOW_GEN"
        let side: Side = random.below(2) == 0 ? .buy : .sell
        let aggressive = Int64(random.below(100)) < crossPct
        let offset = Int64(random.below(3))
        let behind = 1 + Int64(random.below(5))
        let qty = 1 + Int64(random.below(UInt64(maxQty)))
        var price: Ticks
        switch (side, aggressive) {
        case (.buy, true):
            price = (bestAsk ?? referencePrice) + offset
        case (.sell, true):
            price = (bestBid ?? referencePrice) - offset
        case (.buy, false):
            price = referencePrice - behind
            if let bestAsk { price = min(price, bestAsk - 1) }
        case (.sell, false):
            price = referencePrice + behind
            if let bestBid { price = max(price, bestBid + 1) }
        }
        price = min(max(price, 1), maxPriceTicks)
        return ExternalOrderIntent(symbol: symbol, side: side, price: price, qty: qty, flowIndex: flowIndex, aggressive: aggressive)
    }
}
