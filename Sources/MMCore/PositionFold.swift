/// How a fill changes a position: the one rule the trading-state service applies and every
/// checker recomputes. Pure and exact in integers.
///
/// - `open_cost` is the signed cost basis of the open quantity (+ long, − short).
/// - A fill in the direction of the position (or from flat) adds `price × qty` to it.
/// - A fill against the position closes `c = min(qty, |net|)` lots. The cost removed is
///   `open_cost × c / |net|`, truncated toward zero, so what truncation leaves stays in the
///   open cost and is realized when the position closes: over a round trip to flat,
///   realized PnL is exactly sell proceeds minus buy cost, not one tick lost.
///   realized += sign(net) × price × c − removed.
/// - If the fill is larger than the position it flips: the rest opens a new position at the
///   fill price.
/// - `avg_price` = |open_cost| / |net| truncated (display only); 0 when flat.
public enum PositionFold {
    public static func apply(_ fill: Fill, to position: Position, version: Int64) -> Position {
        var next = position
        let signedQty = fill.side.sign * fill.qty
        if next.netQty == 0 || (next.netQty > 0) == (signedQty > 0) {
            next.netQty += signedQty
            next.openCost += fill.price * signedQty
        } else {
            let held = abs(next.netQty)
            let closing = min(fill.qty, held)
            let positionSign: Int64 = next.netQty > 0 ? 1 : -1
            let removed = next.openCost * closing / held
            next.realizedPnl += positionSign * fill.price * closing - removed
            next.openCost -= removed
            next.netQty -= positionSign * closing
            let opening = fill.qty - closing
            if next.netQty == 0 { next.openCost = 0 }
            if opening > 0 {
                next.netQty = fill.side.sign * opening
                next.openCost = fill.price * fill.side.sign * opening
            }
        }
        next.avgPrice = next.netQty == 0 ? 0 : abs(next.openCost) / abs(next.netQty)
        next.fillCount += 1
        next.lastFillSeq = max(next.lastFillSeq, fill.seq)
        next.version = version
        return next
    }

    /// The positions a set of distinct fills produces, applied in seq order. Versions are the
    /// ordinal of the fill that last changed each position.
    public static func fold(_ fills: [Fill]) -> [String: Position] {
        var positions: [String: Position] = [:]
        for (index, fill) in fills.sorted(by: { $0.seq < $1.seq }).enumerated() {
            let current = positions[fill.symbol] ?? .flat(fill.symbol)
            positions[fill.symbol] = apply(fill, to: current, version: Int64(index + 1))
        }
        return positions
    }

    /// Compares only the economic fields (net, cost, realized, count, last seq), which any
    /// correct ledger must reproduce whatever its version numbering.
    public static func economicallyEqual(_ lhs: Position, _ rhs: Position) -> Bool {
        lhs.symbol == rhs.symbol && lhs.netQty == rhs.netQty && lhs.openCost == rhs.openCost
            && lhs.realizedPnl == rhs.realizedPnl && lhs.fillCount == rhs.fillCount && lhs.lastFillSeq == rhs.lastFillSeq
    }
}
