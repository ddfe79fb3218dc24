import MMCore

/// The reference price of one symbol: a bounded random walk that is a pure function of
/// (seed, symbol, tick index). Tick 0 is the base price; tick i moves tick i−1 by a step in
/// −max_step…+max_step drawn from (seed, symbol, i), reflected at base ± band so the walk
/// never sticks to an edge and never leaves the band (base > band is enforced by the
/// config, so the price is always ≥ 1).
///
/// Computing tick i needs every step before it, so the value type keeps a cursor (the last
/// tick computed, making the live "next tick" O(1)) and a checkpoint every 4096 ticks, so
/// an earlier tick costs at most 4096 steps.
public struct ReferencePricePath: Sendable {
    public let seed: Int64
    public let symbol: String
    public let basePrice: Ticks
    public let bandTicks: Int64
    public let maxStepTicks: Int64
    public static let checkpointInterval: Int64 = 4096

    private let symbolKey: UInt64
    private var checkpoints: [Ticks]
    private var cursorIndex: Int64 = 0
    private var cursorPrice: Ticks

    public init(seed: Int64, symbol: String, basePrice: Ticks, bandTicks: Int64, maxStepTicks: Int64) {
        precondition(basePrice > bandTicks && bandTicks >= 1 && maxStepTicks >= 1 && maxStepTicks <= bandTicks,
                     "ReferencePricePath needs base > band ≥ max_step ≥ 1 (ClusterConfig.validate enforces it)")
        self.seed = seed
        self.symbol = symbol
        self.basePrice = basePrice
        self.bandTicks = bandTicks
        self.maxStepTicks = maxStepTicks
        self.symbolKey = stableSymbolKey(symbol)
        self.checkpoints = [basePrice]
        self.cursorPrice = basePrice
    }

    public init(seed: Int64, spec: SymbolSpec, settings: ClusterConfig.ExchangeSettings) {
        self.init(seed: seed, symbol: spec.symbol, basePrice: spec.basePrice, bandTicks: settings.priceBandTicks, maxStepTicks: settings.maxStepTicks)
    }

    public var lowerBound: Ticks { basePrice - bandTicks }
    public var upperBound: Ticks { basePrice + bandTicks }

    /// The step taken to reach tick `index` (index ≥ 1).
    public func step(at index: Int64) -> Int64 {
        var random = SplitMix64.stream(seed: seed, key: symbolKey, index: index, salt: 0x5052_4943_455F_5741) // "PRICE_WA"
        return Int64(random.below(UInt64(2 * maxStepTicks + 1))) - maxStepTicks
    }

    private func move(_ price: Ticks, index: Int64) -> Ticks {
        var next = price + step(at: index)
        if next > upperBound { next = 2 * upperBound - next }
        if next < lowerBound { next = 2 * lowerBound - next }
        return next
    }

    /// The price at `index` (negative indices are tick 0). Amortized O(1) when called with
    /// non-decreasing indices.
    public mutating func price(at index: Int64) -> Ticks {
        let target = max(0, index)
        if target < cursorIndex {
            let checkpoint = target / Self.checkpointInterval
            var price = checkpoints[Int(checkpoint)]
            var at = checkpoint * Self.checkpointInterval
            while at < target {
                at += 1
                price = move(price, index: at)
            }
            return price
        }
        while cursorIndex < target {
            cursorIndex += 1
            cursorPrice = move(cursorPrice, index: cursorIndex)
            if cursorIndex % Self.checkpointInterval == 0 { checkpoints.append(cursorPrice) }
        }
        return cursorPrice
    }

    /// The reference implementation: walks from tick 0 with no cache. Tests compare it
    /// with the cached path.
    public func recomputeFromScratch(at index: Int64) -> Ticks {
        var price = basePrice
        var at: Int64 = 0
        while at < max(0, index) {
            at += 1
            price = move(price, index: at)
        }
        return price
    }
}
