import MMCore

/// What the node wants resting on the book for one symbol. A side with no price is withdrawn
/// (its qty is then 0).
public struct QuoteTarget: Sendable, Hashable, CustomStringConvertible {
    public var bidPrice: Ticks?
    public var bidQty: Lots
    public var askPrice: Ticks?
    public var askQty: Lots

    public init(bidPrice: Ticks?, bidQty: Lots, askPrice: Ticks?, askQty: Lots) {
        self.bidPrice = bidPrice
        self.bidQty = bidQty
        self.askPrice = askPrice
        self.askQty = askQty
    }

    public static let withdrawn = QuoteTarget(bidPrice: nil, bidQty: 0, askPrice: nil, askQty: 0)

    /// Both sides withdrawn: the node cancels rather than replaces.
    public var isEmpty: Bool { bidPrice == nil && askPrice == nil }

    public var description: String {
        let bid = bidPrice.map { "\(bidQty)@\($0)" } ?? "-"
        let ask = askPrice.map { "\(askQty)@\($0)" } ?? "-"
        return "bid \(bid) / ask \(ask)"
    }
}

/// The node's quoting rule: a pure, deterministic function of the reference price, the
/// authoritative position and the configured parameters. No clock, no I/O, integer ticks and
/// lots only, total over every Int64 input (it never traps).
///
/// - skew = clamp(net_qty, ±limit) × skew_ticks_at_limit / position_limit_lots, the division
///   truncating toward zero (so a position smaller than limit/skew_ticks moves nothing, and
///   a long and a short of the same size skew by the same amount in opposite directions).
///   Clamping the position at the limit keeps the skew at most skew_ticks_at_limit even when
///   the cluster is carried past its limit (e.g. by fills of an earlier holder's quote).
/// - centre = reference − skew: long inventory lowers both prices (sell more eagerly, buy
///   less eagerly), short inventory raises them.
/// - bid = centre − ⌊spread/2⌋, ask = bid + spread: never crossed or locked (spread ≥ 1).
/// - A side whose price would be ≤ 0 or above `maxPriceTicks` is withdrawn.
/// - bid size = min(size, limit − net), ask size = min(size, limit + net): a full fill of
///   either side can never carry |net| past the limit; at net ≥ limit the bid (which would grow
///   a long) is withdrawn, at net ≤ −limit the ask.
public enum QuoteModel {
    public static func quote(
        referencePrice: Ticks,
        netQty: Lots,
        parameters: ClusterConfig.QuotingParameters,
        maxPriceTicks: Ticks = Ticks.max
    ) -> QuoteTarget {
        // Config validation guarantees these; clamping keeps the function total anyway.
        let spread = max(parameters.spreadTicks, 1)
        let limit = max(parameters.positionLimitLots, 0)
        let size = max(parameters.sizeLots, 0)
        let skewAtLimit = max(parameters.skewTicksAtLimit, 0)
        guard referencePrice > 0, size > 0 else { return .withdrawn }

        let skew = inventorySkew(netQty: netQty, limit: limit, skewAtLimit: skewAtLimit)
        let (centre, centreOverflow) = referencePrice.subtractingReportingOverflow(skew)
        guard !centreOverflow else { return .withdrawn }
        let (bid, bidOverflow) = centre.subtractingReportingOverflow(spread / 2)
        guard !bidOverflow else { return .withdrawn }
        let (ask, askOverflow) = bid.addingReportingOverflow(spread)
        guard !askOverflow else { return .withdrawn }

        let bidRoom = room(limit: limit, minus: netQty)
        let askRoom = room(limit: limit, plus: netQty)
        let bidQty = min(size, bidRoom)
        let askQty = min(size, askRoom)

        var target = QuoteTarget.withdrawn
        if bidQty > 0, bid > 0, bid <= maxPriceTicks {
            target.bidPrice = bid
            target.bidQty = bidQty
        }
        if askQty > 0, ask > 0, ask <= maxPriceTicks {
            target.askPrice = ask
            target.askQty = askQty
        }
        return target
    }

    /// clamp(net, ±limit) × skewAtLimit / limit, truncated toward zero, computed at double
    /// width so no configuration can overflow it. |result| ≤ skewAtLimit.
    public static func inventorySkew(netQty: Lots, limit: Lots, skewAtLimit: Int64) -> Int64 {
        guard limit > 0, skewAtLimit > 0 else { return 0 }
        let clamped = min(max(netQty, -limit), limit)
        let product = skewAtLimit.multipliedFullWidth(by: clamped)
        // dividingFullWidth truncates toward zero; the quotient's magnitude is ≤ skewAtLimit.
        return limit.dividingFullWidth(product).quotient
    }

    /// limit − net, or Int64.max when that overflows (net hugely negative), never below 0.
    private static func room(limit: Lots, minus net: Lots) -> Lots {
        let (value, overflow) = limit.subtractingReportingOverflow(net)
        return overflow ? (net < 0 ? Lots.max : 0) : max(value, 0)
    }

    /// limit + net, or Int64.max when that overflows (net hugely positive), never below 0.
    private static func room(limit: Lots, plus net: Lots) -> Lots {
        let (value, overflow) = limit.addingReportingOverflow(net)
        return overflow ? (net > 0 ? Lots.max : 0) : max(value, 0)
    }
}
